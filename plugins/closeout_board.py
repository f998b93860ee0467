"""日清日结看板 (close-out board) in the Airflow UI: the FastAPI app of `closeout.board.web`, served by the
api-server under /closeout, and an external view that puts it in the UI's navigation.

Why an external view over a FastAPI app rather than a React app: the board is server-rendered HTML with a few
lines of script, so it needs no JavaScript toolchain, bundle or version pinning against the UI's React; it is
tested like the rest of the Python code and changes with it. The UI shows it in an iframe of the same origin,
so the board sees the UI's login cookie and authenticates every request through Airflow's auth manager.
"""

from airflow.plugins_manager import AirflowPlugin

from closeout.board.web import MOUNT, create_app


class CloseoutBoardPlugin(AirflowPlugin):
    name = "closeout_board"
    fastapi_apps = [{"app": create_app(), "url_prefix": MOUNT, "name": "日清日结看板 close-out board"}]
    external_views = [
        {
            "name": "日清日结看板",
            "href": f"{MOUNT}/board/",
            "destination": "nav",
            "url_route": "closeout-board",
        }
    ]
