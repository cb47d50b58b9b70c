"""Chaos: the nightly ingest of one day against a reference server answering with seeded random
transient faults (429 + Retry-After, 5xx bursts, connection resets, slow answers) publishes exactly
what a fault-free run publishes: same snapshot and quarantine content hashes, nothing lost.

The day runs through the pipeline functions the nightly DAG's tasks call (catalogue, dossiers pulled
per province then published as one batch, the quarter's commune reports). Seed 1 runs the whole
ingest (in a child process, alongside the fault-free run); seeds 2 and 3 run the pulls only and must
deliver exactly the fault-free records and raw-archive payload digest (the ingest of equal records is
deterministic) -- three seeded chaos runs within the suite's time budget.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import subprocess
import sys
from collections import Counter
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from egov_index import pipeline, pull
from egov_index.config import Settings
from egov_index.registry import current_units
from egov_index.source_server.app import ServerSettings, create_app
from egov_index.source_server.faults import CHAOS_KINDS, Chaos
from egov_index.source_server.process import running_server
from egov_index.store import MANIFEST_FILE, DataStore

TOKEN = secrets.token_urlsafe(16)
DAY = date(2026, 9, 30)
PERIOD = "2026-Q3"
CHAOS_RATE = 0.3
CHAOS_SEEDS = (1, 2, 3)  # bounded number of chaos runs
DOSSIERS_PER_DAY = 400
FAULT_LINE = re.compile(r"fault chaos:(\S+) on (\S+)")


def settings_for(root: Path) -> Settings:
    return dataclasses.replace(
        Settings.from_env(),
        data_root=root,
        inbox_dir=root.parent / "inbox",
        sql_url=f"sqlite:///{root.parent / 'ledger.sqlite'}",
        dossier_page_limit=60,  # several cursor pages per province: more requests to fault
        report_page_size=400,
    )


def digests(root: Path) -> dict[str, str]:
    return {
        str(m.relative_to(root)): json.loads(m.read_text())["sha256"]
        for sub in ("snapshots", "quarantine")
        for m in sorted((root / sub).rglob(MANIFEST_FILE))
    }


def nightly(url: str, root: Path, token: str = TOKEN) -> list[dict]:
    """One day of the nightly ingest through the pipeline functions; returns the batch summaries."""
    endpoint = pull.SourceEndpoint("portal", url, token, backoff_factor_s=0.01, retries=5)
    settings = settings_for(root)
    store = DataStore(root)
    provinces = current_units().province_codes()
    summaries = [pipeline.ingest_procedures(store, settings, endpoint, DAY)]
    pulled = [pipeline.pull_province_dossiers(settings, endpoint, DAY, code) for code in provinces]
    summaries.append(pipeline.ingest_province_dossiers(store, settings, DAY, provinces))
    assert summaries[-1]["rows_pulled"] == sum(p["rows_pulled"] for p in pulled)
    summaries.append(pipeline.ingest_commune_reports(store, settings, endpoint, PERIOD))
    pipeline.check_accounting(summaries)
    return summaries


def pulled(url: str, root: Path) -> dict[str, object]:
    """Only the pulls of the nightly ingest (dossiers through the raw archive as the mapped tasks do):
    what the deterministic ingest consumes."""
    from egov_index.raw_archive import RawArchive

    endpoint = pull.SourceEndpoint("portal", url, TOKEN, backoff_factor_s=0.01, retries=5)
    settings = settings_for(root)
    provinces = current_units().province_codes()
    for code in provinces:
        pipeline.pull_province_dossiers(settings, endpoint, DAY, code)
    parts = [pipeline.province_batch(DAY, code) for code in sorted(provinces)]
    return {
        "procedures": pull.fetch_procedures(endpoint, page_size=settings.report_page_size),
        "dossiers": pipeline.archived_records(RawArchive(root), "dossiers", parts),
        "commune_reports": pull.fetch_commune_reports(endpoint, PERIOD, page_size=settings.report_page_size),
    }


def chaos_faults(log_dir: Path) -> list[tuple[str, str]]:
    """(fault kind, path) of every chaos fault the server logged."""
    return [m.groups() for log in sorted(log_dir.glob("*.log")) for m in FAULT_LINE.finditer(log.read_text())]


def test_the_chaos_draw_is_seeded_transient_and_keyed_by_request() -> None:
    keys = [f"/api/v1/dossiers?cursor=c{i}&limit=60" for i in range(2000)]
    chaos = Chaos(rate=CHAOS_RATE, seed=1)
    draws = [chaos.draw(k) for k in keys]
    assert draws == [Chaos(rate=CHAOS_RATE, seed=1).draw(k) for k in keys]  # reproducible
    assert draws != [Chaos(rate=CHAOS_RATE, seed=2).draw(k) for k in keys]  # the seed matters
    faulted = [d for d in draws if d is not None]
    assert 0.25 < len(faulted) / len(keys) < 0.35
    assert {f.kind for f, _ in faulted} == set(CHAOS_KINDS) == {"429", "5xx-burst", "reset", "slow"}
    assert all(1 <= n <= chaos.max_failures for _, n in faulted)
    assert all(Chaos(rate=0.0, seed=1).draw(k) is None for k in keys)
    with pytest.raises(ValueError, match="chaos rate"):
        Chaos(rate=1.5)
    with pytest.raises(ValueError, match="chaos rate"):
        ServerSettings(token="t", chaos_rate=-0.1)


def test_a_chaos_fault_fails_only_the_first_attempts_of_its_request() -> None:
    auth = {"Authorization": "Bearer t"}
    clean = TestClient(create_app(ServerSettings(token="t", dossiers_per_day=50)))
    chaotic = TestClient(
        create_app(ServerSettings(token="t", dossiers_per_day=50, chaos_rate=1.0, chaos_seed=5))
    )
    chaos = Chaos(rate=1.0, seed=5)
    checked = set()
    for size in range(1, 60):
        path = f"/api/v1/procedures?page=1&page_size={size}"
        fault, failures = chaos.draw(path)  # type: ignore[misc]
        if fault.kind not in ("429", "5xx-burst") or fault.kind in checked:
            continue  # a reset needs a real socket (the chaos test below)
        statuses = [chaotic.get(path, headers=auth) for _ in range(failures + 1)]
        expected = 429 if fault.kind == "429" else 503
        assert [r.status_code for r in statuses] == [expected] * failures + [200]
        if fault.kind == "429":
            assert statuses[0].headers["retry-after"] == "1"
        assert statuses[-1].content == clean.get(path, headers=auth).content
        checked.add(fault.kind)
    assert checked == {"429", "5xx-burst"}
    # without the token there is no chaos, just the 401
    assert chaotic.get("/api/v1/procedures?page=1&page_size=3").status_code == 401


def start_nightly(url: str, root: Path) -> subprocess.Popen[bytes]:
    """The nightly ingest in a child process (this file run as a script): runs use both cores."""
    root.mkdir(parents=True)
    log = (root.parent / "nightly.log").open("wb")
    return subprocess.Popen(
        [sys.executable, __file__, url, str(root)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "EGOV_TEST_SOURCE_TOKEN": TOKEN},
    )


def finish_nightly(proc: subprocess.Popen[bytes], root: Path) -> list[dict]:
    rc = proc.wait(timeout=300)
    assert rc == 0, (root.parent / "nightly.log").read_text()[-4000:]
    return json.loads((root.parent / "summaries.json").read_text())


@pytest.mark.integration
def test_nightly_ingest_under_seeded_chaos_publishes_what_a_fault_free_run_publishes(tmp_path: Path) -> None:
    servers = {"clean": 0.0, **{f"chaos-{seed}": CHAOS_RATE for seed in CHAOS_SEEDS}}
    summaries: dict[str, list[dict]] = {}
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(
                running_server(
                    tmp_path / "servers" / name,
                    token=TOKEN,
                    dossiers_per_day=DOSSIERS_PER_DAY,
                    chaos_rate=rate,
                    chaos_seed=int(name.split("-")[1]) if rate else 0,
                )
            )
            for name, rate in servers.items()
        }
        roots = {name: tmp_path / name / "data" for name in servers}
        first = start_nightly(urls["chaos-1"], roots["chaos-1"])  # alongside the fault-free run
        summaries["clean"] = nightly(urls["clean"], roots["clean"])
        # the other seeds pull only (the ingest of equal records is deterministic: test_e2e's rerun)
        pulls = {
            name: pulled(urls[name], tmp_path / f"{name}-pulls" / "data")
            for name in ("clean", "chaos-2", "chaos-3")
        }
        summaries["chaos-1"] = finish_nightly(first, roots["chaos-1"])
    reference = digests(roots["clean"])
    assert any("snapshots/dossiers" in k for k in reference) and any("quarantine" in k for k in reference)
    assert any("snapshots/commune_reports" in k for k in reference)
    assert chaos_faults(tmp_path / "servers" / "clean") == []
    kinds: Counter[str] = Counter()
    for seed in CHAOS_SEEDS:
        name = f"chaos-{seed}"
        faults = chaos_faults(tmp_path / "servers" / name)
        assert len(faults) >= 5, f"{name}: chaos too quiet to prove anything: {faults}"
        kinds.update(kind for kind, _ in faults)
        if name in pulls:
            assert pulls[name] == pulls["clean"], name  # every record, none twice, same payload digest
            continue
        assert summaries[name] == summaries["clean"], name  # same rows pulled, kept and quarantined
        assert digests(roots[name]) == reference, name
    assert set(kinds) == set(CHAOS_KINDS), kinds  # every transient fault kind was absorbed


if __name__ == "__main__":  # the child of start_nightly: python tests/test_chaos.py URL DATA_ROOT
    data_root = Path(sys.argv[2])
    done = nightly(sys.argv[1], data_root, os.environ["EGOV_TEST_SOURCE_TOKEN"])
    (data_root.parent / "summaries.json").write_text(json.dumps(done))
