"""Data Docs: a run's site opens offline, history is bounded, concurrent builds do not interfere."""

from __future__ import annotations

import json
import multiprocessing
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from test_quality import good_dossiers, good_procedures, good_reports, run

from egov_index.data_docs import build_data_docs, run_dir_name, save_result
from egov_index.quality import BatchBlocked, ValidationOutcome

RUN_ID = "scheduled__2026-10-01T01:30:00+07:00"
LINK = re.compile(r'(?:href|src)="([^"#]+)"')


@pytest.fixture(scope="module")
def outcomes() -> list[ValidationOutcome]:
    """A quarantined and warned dossier batch, a blocked report batch and a clean catalogue."""
    dossiers = good_dossiers()
    dossiers.loc[3, "channel"] = "fax"
    dossiers.loc[2, ["status", "resolved_at"]] = ["resolved", None]
    with pytest.raises(BatchBlocked) as blocked:
        run("commune_reports", good_reports().drop(columns=["officials_total"]))
    assert blocked.value.outcome is not None
    return [run("dossiers", dossiers), blocked.value.outcome, run("procedures", good_procedures())]


def _text(page: Path) -> str:
    """The page's text without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))


def local_links(page: Path) -> list[Path]:
    """Targets of the page's links that are not on the web (relative paths, resolved)."""
    targets = [unquote(t) for t in LINK.findall(page.read_text(encoding="utf-8"))]
    return [(page.parent / t).resolve() for t in targets if not re.match(r"^[a-z]+:", t)]


def test_a_runs_site_opens_offline_and_names_each_suite(tmp_path: Path, outcomes) -> None:
    dossiers, reports, procedures = outcomes
    save_result(dossiers, tmp_path, RUN_ID)  # as a task would, in its own process
    index = build_data_docs([reports, procedures], tmp_path, RUN_ID)

    run_dir = tmp_path / "runs" / run_dir_name(RUN_ID)
    assert index == run_dir / "index.html"
    assert (tmp_path / "latest").resolve() == run_dir.resolve()
    text = index.read_text(encoding="utf-8")
    for dataset, status in [("dossiers", "quarantined"), ("commune_reports", "blocked"), ("procedures", "passed")]:
        assert re.search(rf"<td>{dataset}</td><td>2026-Q3</td><td class={status}>", text), dataset
    assert "expect_column_values_to_be_in_set" in text and "officials_total" in text

    pages = {p.parent.parent.parent.name: p for p in (run_dir / "validations").rglob("*.html")}
    assert set(pages) == {"dossiers", "commune_reports", "procedures"}
    page = pages["dossiers"].read_text(encoding="utf-8")
    assert re.search(r'Expectation Suite:</span>\s*<a href="[./]*expectations/dossiers.html"\s*>dossiers</a>', page)
    assert "Data asset: dossiers / 2026-Q3" in page and "Failed" in page
    suite = (run_dir / "expectations" / "dossiers.html").read_text(encoding="utf-8")
    assert "The receiving commune code is not in the current administrative-unit registry" in suite
    # the project's reference-set expectations render as sentences naming the set, not as raw kwargs
    reports = _text(run_dir / "expectations" / "commune_reports.html")
    assert "values must belong to the reference set commune_codes" in reports  # under its column
    assert "commune_code and province_code must belong, as pairs, to the reference set commune_province_pairs" in (
        reports
    )

    # our index pages need nothing from the network; every page link resolves to a file of the site
    for own in (index, tmp_path / "index.html"):
        assert not re.search(r"(?:href|src)=\"?https?:", own.read_text(encoding="utf-8")), own
    for source in [index, tmp_path / "index.html", pages["dossiers"]]:
        html_links = [t for t in local_links(source) if t.suffix == ".html"]
        assert html_links and all(t.is_file() for t in html_links), source
    assert f'href="runs/{run_dir_name(RUN_ID)}/index.html"' in (tmp_path / "index.html").read_text()


def test_saving_a_batch_again_replaces_it(tmp_path: Path, outcomes) -> None:
    first = save_result(outcomes[0], tmp_path, RUN_ID)
    assert save_result(outcomes[0], tmp_path, RUN_ID) == first
    build_data_docs([], tmp_path, RUN_ID)
    assert len(list((tmp_path / "runs" / run_dir_name(RUN_ID) / "validations").rglob("*.html"))) == 1


@pytest.mark.integration
def test_a_fresh_process_builds_the_site_from_saved_results(tmp_path: Path, outcomes) -> None:
    """The run's last task builds the site in its own process, which never validated a batch."""
    save_result(outcomes[1], tmp_path, RUN_ID)  # commune reports: the reference-set expectations
    code = f"from egov_index.data_docs import build_data_docs; build_data_docs([], {str(tmp_path)!r}, {RUN_ID!r})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    suite = _text(tmp_path / "runs" / run_dir_name(RUN_ID) / "expectations" / "commune_reports.html")
    assert "values must belong to the reference set province_codes" in suite


def test_history_keeps_the_newest_runs(tmp_path: Path, outcomes) -> None:
    keep = 2
    run_ids = [f"manual__2026-10-0{day}T01:30:00+07:00" for day in (1, 2, 3)]
    for run_id in run_ids:  # N + 1 runs
        build_data_docs(outcomes[2:], tmp_path, run_id, keep=keep)

    kept = [run_dir_name(r) for r in run_ids[1:]]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(kept)
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == sorted(kept)
    assert sorted(p.stem for p in (tmp_path / ".locks").glob("*-*.lock")) == sorted(kept)
    assert (tmp_path / "latest").resolve().name == kept[-1]
    site = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert run_ids[0] not in site and all(r in site for r in run_ids[1:])
    assert site.index(run_ids[2]) < site.index(run_ids[1])  # newest first
    assert not list((tmp_path / ".staging").iterdir())


def _build(out_dir: Path, run_id: str, outcomes: list[ValidationOutcome], start) -> None:
    start.wait()
    build_data_docs(outcomes, out_dir, run_id)


def test_concurrent_builds_do_not_interfere(tmp_path: Path, outcomes) -> None:
    """Two runs and a second build of one of them, at the same moment, in separate processes."""
    fork = multiprocessing.get_context("fork")  # the parent has GX imported already: fast to start
    jobs = [("run-a", outcomes[:1]), ("run-b", outcomes[1:]), ("run-a", outcomes[2:])]
    start = fork.Barrier(len(jobs))
    workers = [fork.Process(target=_build, args=(tmp_path, r, o, start)) for r, o in jobs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0]

    for run_id, datasets in [("run-a", {"dossiers", "procedures"}), ("run-b", {"commune_reports", "procedures"})]:
        run_dir = tmp_path / "runs" / run_dir_name(run_id)
        marker = json.loads((run_dir / "run.json").read_text())
        assert {dataset for dataset, _, _ in marker["batches"]} == datasets, run_id
        pages = {p.parent.parent.parent.name for p in (run_dir / "validations").rglob("*.html")}
        assert pages == datasets, run_id
        assert (run_dir / "index.html").is_file()
    site = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "run-a" in site and "run-b" in site
    assert (tmp_path / "latest").resolve().name in {run_dir_name("run-a"), run_dir_name("run-b")}
    assert not list((tmp_path / ".staging").iterdir())
