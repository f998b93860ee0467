"""The command-line tools the tests read a bulletin with (poppler for the PDF, Chromium for the HTML)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require(tool: str) -> str:
    path = shutil.which(tool) or (tool if Path(tool).exists() else None)
    if path:
        return path
    message = f"{tool} is needed (apt-get install poppler-utils chromium; .ci/run installs them)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def poppler(tool: str, *args: str) -> str:
    return subprocess.run([require(tool), *args], check=True, capture_output=True, text=True).stdout
