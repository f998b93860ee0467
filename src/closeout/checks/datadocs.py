"""The day's checks as GX Data Docs: static HTML under <outbox>/<date>/checks/ (open index.html in a browser).

Every validation of the day (each load group's batch, the day's reconcile) keeps GX's own validation results
as JSON in checks/results/; reconcile rebuilds the site from all of them with GX's site builder, once a day. Not inside an edition folder: editions are immutable and hashed, checks are redone.
The one-line findings stay the operator's contract; these pages are for looking closer.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

from closeout.core.settings import Settings

SITE = {
    "class_name": "SiteBuilder",
    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    "site_section_builders": {"profiling": "0"},
}


def checks_folder(settings: Settings, report_date: date) -> Path:
    return settings.outbox / report_date.isoformat() / "checks"


def keep_results(settings: Settings, report_date: date, label: str, results: list) -> None:
    """Keep GX's validation results under `label` (validating the same again replaces them)."""
    if not results:
        return
    kept = checks_folder(settings, report_date) / "results" / f"{label}.json"
    kept.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps([r.to_json_dict() for r in results], ensure_ascii=False, default=str)
    kept.with_suffix(".tmp").write_text(text, encoding="utf-8")
    kept.with_suffix(".tmp").replace(kept)  # a reader never sees half a file


def rebuild(ctx, report_date: date) -> Path | None:
    """The day's site from the results kept for it (after reconcile_day(…, build_docs=False))."""
    from closeout.checks.engine import GxRunner

    return build(GxRunner.shared(), checks_folder(ctx.settings, report_date))


def group_label(stage: str, unit_codes: list[str]) -> str:
    """A load group's results file: the same units validated again replace their earlier results."""
    digest = hashlib.sha256(",".join(sorted(unit_codes)).encode()).hexdigest()[:12]
    return f"{stage}-{digest}"


def build(runner, folder: Path) -> Path | None:
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = runner.context
    schema = ExpectationSuiteValidationResultSchema()
    identifiers: list = []
    suites: dict[str, list] = {}
    for path in sorted((folder / "results").glob("*.json")):
        for raw in json.loads(path.read_text(encoding="utf-8")):
            result = schema.load(raw)
            run = raw["meta"]["run_id"]
            batch = raw["meta"]["active_batch_definition"]
            identifier = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
                run_id=RunIdentifier(run_name=run.get("run_name") or path.stem, run_time=run["run_time"]),
                batch_identifier=f"{batch['datasource_name']}-{batch['data_asset_name']}",
            )
            context.validation_results_store.set(identifier, result)
            identifiers.append(identifier)
            # The suites live only for their runs: rebuilt from the results, so the pages linking to them open.
            suites.setdefault(result.suite_name, [r.expectation_config.to_domain_obj() for r in result.results])
    if not identifiers:  # nothing validated that day (GX would build every result it holds)
        return None
    for name, expectations in suites.items():
        for expectation in expectations:
            expectation.id = None  # a suite takes only expectations that belong to none
        context.suites.add(runner.gx.ExpectationSuite(name=name, expectations=expectations))
        identifiers.append(ExpectationSuiteIdentifier(name=name))
    site = f"checks-{folder.parent.name}"
    config = {**SITE, "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)}}
    if site in (context.variables.data_docs_sites or {}):
        context.update_data_docs_site(site, config)
    else:
        context.add_data_docs_site(site, config)
    try:
        context.build_data_docs(site_names=[site], resource_identifiers=identifiers)
    finally:
        for name in suites:
            context.suites.delete(name)
        for identifier in identifiers:
            if isinstance(identifier, ValidationResultIdentifier):  # loaded for this build only
                context.validation_results_store.remove_key(identifier)
    _drop_unused_images(folder)
    return folder / "index.html"


def _drop_unused_images(folder: Path) -> None:
    """GX copies 3 MB of tutorial images into every site; a day keeps only those its pages show."""
    pages = "".join(p.read_text(encoding="utf-8") for p in folder.rglob("*.html"))
    for image in (folder / "static" / "images").glob("*"):
        if image.name not in pages:
            image.unlink()
