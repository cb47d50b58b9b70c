"""Data Docs: one static GX site per pipeline run, browsable offline, with bounded history.

Layout under ``out_dir`` (the pipeline uses ``<data_root>/quality/data_docs``)::

    index.html                   the kept runs, newest first
    latest -> runs/<run>         symlink to the newest built run, switched atomically
    runs/<run>/index.html        the run's batches: status, rows, failed checks, links to the pages
    runs/<run>/validations/...   GX validation pages, one per batch (GX's own renderer)
    runs/<run>/expectations/...  GX suite pages, as run (parameters filled in, reasons as notes)
    results/<run>/<dataset>/<partition>.json   the validation results a run's site is built from

``<run>`` is the run id made safe for file names (plus a short hash, so distinct ids never share a
directory). Tasks of a run validate in separate processes: each saves its outcomes with
:func:`save_result`, and :func:`build_data_docs` renders every result saved for the run. A build
renders into a private staging directory and moves it into ``runs/<run>`` under a per-run lock, so
builds of different runs never touch each other's directory and two builds of one run take turns;
the shared files (``index.html``, ``latest``, pruning to the newest ``keep`` runs) change under a
short lock of the whole site. The index pages are plain HTML without scripts; GX's pages are
rendered on the server side too and read fine offline (their styling comes from CDNs when online).

GX is imported only inside functions, with analytics off, through :func:`egov_index.quality.import_gx`,
which also registers the project's custom expectations (:mod:`egov_index.gx_expectations`): the task
that builds the site may never have validated anything, yet its saved results use them.
"""

from __future__ import annotations

import fcntl
import hashlib
import html
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from egov_index.quality import ValidationOutcome, import_gx

log = logging.getLogger(__name__)

DEFAULT_KEEP = 30
SITE_NAME = "egov_index"
RUNS = "runs"
RESULTS = "results"
STAGING = ".staging"
LOCKS = ".locks"
LATEST = "latest"
RUN_FILE = "run.json"
STALE_STAGING_S = 3600.0
STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}.passed{color:#176317}"
    ".warned{color:#8a5a00}.quarantined{color:#9a4a00}.blocked{color:#b00020;font-weight:bold}"
    "ul{margin:0;padding-left:1.2em}"
)


def run_dir_name(run_id: str) -> str:
    """The run id as a directory name: safe characters, plus a hash so distinct ids stay distinct."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._-")[:80] or "run"
    return f"{slug}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", name) or "_"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (flock on ``path``), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- saving results (each task) -------------------------------------------------------------------


def save_result(outcome: ValidationOutcome, out_dir: Path, run_id: str) -> Path:
    """Save one batch's outcome for its run's Data Docs (a blocked batch: ``BatchBlocked.outcome``).

    Saving the same dataset and partition again in the same run replaces the earlier result.
    """
    path = Path(out_dir) / RESULTS / run_dir_name(run_id) / outcome.dataset / f"{_safe(outcome.partition)}.json"
    record = {
        "run_id": run_id,
        "dataset": outcome.dataset,
        "partition": outcome.partition,
        "status": outcome.status,
        "blocked": outcome.blocked,
        "validated_at": outcome.validated_at.isoformat(),
        "gx_seconds": round(outcome.gx_seconds, 3),
        "rows_in": outcome.rows_in,
        "rows_valid": len(outcome.valid),
        "rows_quarantined": len(outcome.quarantine),
        "results": [{**asdict(r), "column": r.column} for r in outcome.results],
        "gx_result": outcome.gx_result.to_json_dict(),
    }
    _write_atomically(path, json.dumps(record, ensure_ascii=False, default=str))
    return path


def _saved(out_dir: Path, run: str) -> list[dict[str, Any]]:
    folder = out_dir / RESULTS / run
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*/*.json"))]
    return sorted(records, key=lambda r: (r["dataset"], r["partition"]))


# --- building a run's site --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Page:
    """Where a batch's GX pages landed, relative to the run directory."""

    validation: str
    suite: str


def _render_gx_site(records: list[dict[str, Any]], run: str, site_dir: Path) -> list[_Page]:
    """Render GX's validation and suite pages of the records into ``site_dir`` (no GX index)."""
    gx = import_gx()
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = gx.get_context(mode="ephemeral")
    context.add_data_docs_site(
        SITE_NAME,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    keys, suites = [], set()
    for record in records:
        result = expectationSuiteValidationResultSchema.load(record["gx_result"])
        run_id = RunIdentifier(run_name=run, run_time=datetime.fromisoformat(record["validated_at"]))
        result.meta["run_id"] = run_id
        result.meta["batch_spec"] = {"data_asset_name": f"{record['dataset']} / {record['partition']}"}
        key = ValidationResultIdentifier(
            ExpectationSuiteIdentifier(name=record["dataset"]), run_id, _safe(record["partition"])
        )
        context.validation_results_store.set(key, result)
        keys.append(key)
        if record["dataset"] not in suites:
            context.suites.add(_suite_as_run(gx, record))
            suites.add(record["dataset"])
    context.build_data_docs(site_names=[SITE_NAME], build_index=False)

    pages = []
    for key in keys:
        [url] = context.get_docs_sites_urls(key, site_name=SITE_NAME, only_if_exists=False)
        page = Path(unquote(urlparse(str(url["site_url"])).path))
        if not page.is_file():  # GX logs rendering errors and carries on; a missing page is an error here
            raise RuntimeError(f"GX did not render the validation page {page}; see the GX error logged above")
        suite = site_dir / "expectations" / f"{key.expectation_suite_identifier.name}.html"
        pages.append(_Page(page.relative_to(site_dir).as_posix(), suite.relative_to(site_dir).as_posix()))
    return pages


def _suite_as_run(gx: Any, record: dict[str, Any]) -> Any:
    """The record's suite as GX ran it (parameters filled in), each reason shown as the GX note."""
    configs = [r["expectation_config"] for r in record["gx_result"]["results"]]
    expectations = [
        {**c, "notes": f"{c.get('severity', '')}: {c.get('meta', {}).get('reason', '')}"} for c in configs
    ]
    return gx.ExpectationSuite(name=record["dataset"], expectations=expectations)


def _prune_static(site_dir: Path) -> None:
    """Drop the GX static assets no page links to (GX copies 4 MB of images and fonts per site)."""
    pages = "\n".join(p.read_text(encoding="utf-8") for p in site_dir.rglob("*.html"))
    for asset in (site_dir / "static").rglob("*"):
        if asset.is_file() and f"static/{asset.relative_to(site_dir / 'static').as_posix()}" not in pages:
            asset.unlink()
    for folder in sorted((site_dir / "static").rglob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _run_index(run_id: str, built_at: datetime, records: list[dict[str, Any]], pages: list[_Page]) -> str:
    rows = []
    for record, page in zip(records, pages, strict=True):
        failed = [r for r in record["results"] if r["action"] != "passed"]
        checks = "".join(
            f"<li><b>{_e(r['action'])}</b> ({_e(r['severity'])}): {_e(r['expectation'])} on "
            f"{_e(r['column'] or 'the whole table')}, {_e(r['unexpected_count'] if r['unexpected_count'] is not None else 'n/a')} "
            f"unexpected &mdash; {_e(r['reason'])}</li>"
            for r in failed
        )
        headline = (record["blocked"] or "").split("\n")[0]  # the checks are listed below it
        blocked = f"<p class=blocked>{_e(headline)}</p>" if headline else ""
        rows.append(
            f"<tr><td>{_e(record['dataset'])}</td><td>{_e(record['partition'])}</td>"
            f"<td class={_e(record['status'])}>{_e(record['status'])}</td>"
            f"<td>{record['rows_in']}</td><td>{record['rows_valid']}</td><td>{record['rows_quarantined']}</td>"
            f"<td>{blocked}<ul>{checks}</ul></td>"
            f'<td><a href="{_e(page.validation)}">validation</a><br>'
            f'<a href="{_e(page.suite)}">suite {_e(record["dataset"])}</a></td></tr>'
        )
    return (
        f"<!DOCTYPE html><html><head><meta charset=utf-8><title>Data quality: {_e(run_id)}</title>"
        f"<style>{STYLE}</style></head><body><p><a href=../../index.html>All runs</a></p>"
        f"<h1>Data quality of run {_e(run_id)}</h1><p>Built {_e(built_at.isoformat(timespec='seconds'))}; "
        f"{len(records)} batch(es) validated with Great Expectations.</p>"
        "<table><tr><th>Dataset (suite)</th><th>Partition</th><th>Status</th><th>Rows in</th><th>Valid</th>"
        "<th>Quarantined</th><th>Checks that did not pass</th><th>Pages</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


def _site_index(runs: list[dict[str, Any]]) -> str:
    items = "".join(
        f'<tr><td><a href="{RUNS}/{_e(r["dir"])}/index.html">{_e(r["run_id"])}</a></td>'
        f"<td>{_e(r['built_at'][:19])}</td><td>{len(r['batches'])}</td>"
        f"<td>{_e(', '.join(f'{b[0]} {b[1]}: {b[2]}' for b in r['batches']))}</td></tr>"
        for r in runs
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset=utf-8><title>Data quality runs</title><style>{STYLE}</style>"
        f"</head><body><h1>Data quality runs</h1><p>The newest {len(runs)} run(s); "
        f'<a href="{LATEST}/index.html">latest</a>.</p><table><tr><th>Run</th><th>Built</th>'
        f"<th>Batches</th><th>Status per batch</th></tr>{items}</table></body></html>"
    )


def _publish(out_dir: Path, run: str, keep: int) -> None:
    """Switch ``latest`` to ``run``, keep the newest ``keep`` runs, rewrite the site index."""
    runs_dir = out_dir / RUNS
    runs = []
    for marker in runs_dir.glob(f"*/{RUN_FILE}"):
        runs.append({**json.loads(marker.read_text(encoding="utf-8")), "dir": marker.parent.name})
    runs.sort(key=lambda r: r["built_at"], reverse=True)
    kept, dropped = runs[:keep], runs[keep:]
    for old in dropped:
        shutil.rmtree(runs_dir / old["dir"], ignore_errors=True)
        (out_dir / LOCKS / f"{old['dir']}.lock").unlink(missing_ok=True)
    kept_dirs = {r["dir"] for r in kept}
    saved = (out_dir / RESULTS).iterdir() if (out_dir / RESULTS).exists() else iter(())
    results = sorted(saved, key=lambda p: p.stat().st_mtime, reverse=True)
    for folder in results[keep:]:  # results of runs not kept, unless recently saved (a run in progress)
        if folder.name not in kept_dirs:
            shutil.rmtree(folder, ignore_errors=True)
    stale = time.time() - STALE_STAGING_S
    for leftover in (out_dir / STAGING).iterdir():  # builds killed before their cleanup
        if leftover.stat().st_mtime < stale:
            shutil.rmtree(leftover, ignore_errors=True)

    link = out_dir / f".{LATEST}.{uuid.uuid4().hex}"
    link.symlink_to(f"{RUNS}/{run}", target_is_directory=True)
    os.replace(link, out_dir / LATEST)
    _write_atomically(out_dir / "index.html", _site_index(kept))


def build_data_docs(
    outcomes: Iterable[ValidationOutcome], out_dir: Path, run_id: str, *, keep: int = DEFAULT_KEEP
) -> Path:
    """Save ``outcomes``, build the run's site from every result saved for ``run_id``; its index.html.

    A blocked batch is passed as ``BatchBlocked.outcome``. Keeps the newest ``keep`` runs.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    out_dir = Path(out_dir)
    for outcome in outcomes:
        save_result(outcome, out_dir, run_id)
    run = run_dir_name(run_id)
    with _locked(out_dir / LOCKS / f"{run}.lock"):
        records = _saved(out_dir, run)
        built_at = datetime.now(UTC)
        staging = out_dir / STAGING / f"{run}.{uuid.uuid4().hex}"
        try:
            pages = _render_gx_site(records, run, staging)
            _prune_static(staging)
            _write_atomically(staging / "index.html", _run_index(run_id, built_at, records, pages))
            marker = {
                "run_id": run_id,
                "built_at": built_at.isoformat(),
                "batches": [[r["dataset"], r["partition"], r["status"]] for r in records],
            }
            _write_atomically(staging / RUN_FILE, json.dumps(marker, ensure_ascii=False))
            target = out_dir / RUNS / run
            target.parent.mkdir(parents=True, exist_ok=True)
            with _locked(out_dir / LOCKS / "site.lock"):
                if target.exists():
                    previous = out_dir / STAGING / f"{run}.old.{uuid.uuid4().hex}"
                    os.replace(target, previous)
                    os.replace(staging, target)
                    shutil.rmtree(previous)
                else:
                    os.replace(staging, target)
                _publish(out_dir, run, keep)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    index = out_dir / RUNS / run / "index.html"
    log.info("Data Docs of run %s (%d batch(es)): %s", run_id, len(records), index)
    return index
