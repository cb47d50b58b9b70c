"""Alerts: message content, missing channels, and delivery through Airflow to local SMTP / HTTP sinks.

* unit tests: the message, the channels, the DAG wiring (fast, no Airflow process);
* ``airflow dags test`` of a failing DAG: the task runner calls the tasks' ``on_failure_callback``;
* scheduler + dag-processor + api-server (SQLite, LocalExecutor): a failing task's alert from a real
  worker process, and a Deadline Alert detected by the scheduler and run by the executor.

Every wait is bounded and waits for a condition (a message arriving), never a fixed sleep.
"""

from __future__ import annotations

import email
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import pytest
from airflow_home import migrated_db as session_migrated_db
from slow_answers import SlowAnswers

from egov_index import alerts
from egov_index.alerts import AlertDeliveryError, build_deadline_alert, build_failure_alert, send_alert
from egov_index.local_airflow import airflow_bin, airflow_env, dags_test

BASE_URL = "http://airflow.egov.example:8080/"

FAILING_DAG = '''
from datetime import datetime

from airflow.sdk import dag, task

from egov_index.dag_defaults import DEFAULT_ARGS

DOC = """### Alert demo

**What it does.** Pulls the demo source.

**When it fails.**
- *ValueError*: the demo source is down; clear the task when it is back.
"""


@dag(dag_id="egov_alert_demo", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
     default_args={**DEFAULT_ARGS, "retries": 0}, doc_md=DOC, tags=["test"])
def egov_alert_demo():
    @task
    def pull_source():
        raise ValueError("the reporting API answered 503 three times")

    pull_source()


egov_alert_demo()
'''

# A run that cannot finish in time: a sensor waits for a file the test creates only after the alert.
# Its deadline comes from the project's own helper (minutes from EGOV_DEADLINE_TEST_MINUTES).
LATE_DAG = """
import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import dag, task

from egov_index.dag_defaults import DEFAULT_ARGS, run_deadline


@dag(dag_id="egov_late_demo", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
     default_args={**DEFAULT_ARGS, "retries": 0}, doc_md="**When it fails.** Demo.", tags=["test"],
     deadline=run_deadline(timedelta(hours=1), "EGOV_DEADLINE_TEST_MINUTES", "The demo run"))
def egov_late_demo():
    @task.sensor(poke_interval=1, timeout=600, mode="poke")
    def wait_for_release() -> bool:
        Path(os.environ["EGOV_TEST_RELEASE_FILE"] + ".poked").touch()  # the sensor really runs
        return Path(os.environ["EGOV_TEST_RELEASE_FILE"]).exists()

    @task
    def broken_source():
        raise RuntimeError("portal certificate expired")

    wait_for_release()
    broken_source()


egov_late_demo()
"""


# --------------------------------------------------------------------------- sinks


class Inbox:
    """Thread-safe list of received items; waiting is a bounded wait on a condition."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(
        self, match: Callable[[Any], bool], timeout: float, alive: Callable[[], str | None] = lambda: None
    ) -> Any:
        """The first item matching ``match``; fails after ``timeout`` s or when ``alive()`` names a problem."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [i for i in self.items if match(i)]
                if found:
                    return found[0]
                problem = alive()
                remaining = end - time.monotonic()
                if problem or remaining <= 0:
                    pytest.fail(
                        f"no matching message after {timeout:.0f} s ({problem or 'timeout'}); got {self.items}"
                    )
                # woken by add(); the 1 s cap only re-checks alive() (a crashed component)
                self._cond.wait(timeout=min(remaining, 1.0))


@dataclass
class Mail:
    envelope_from: str
    rcpt_tos: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def html(self) -> str:
        parts = [p for p in self.message.walk() if p.get_content_type() == "text/html"]
        return "".join(p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8") for p in parts)


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class Sinks:
    smtp_port: int
    http_port: int
    mails: Inbox = field(default_factory=Inbox)
    posts: Inbox = field(default_factory=Inbox)
    http_status: list[int] = field(default_factory=lambda: [200])

    def connections(self, token: str = "hook-token") -> dict[str, str]:
        """The two Connections, in the ``AIRFLOW_CONN_*`` JSON form, pointing at the sinks."""
        smtp = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": self.smtp_port,
            "extra": {
                "from_email": "airflow@egov.example",
                "to": "ict-officer@egov.example, data-team@egov.example",
                "disable_ssl": True,
                "disable_tls": True,
                "timeout": 10,
                "retry_limit": 0,
            },
        }
        webhook = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": self.http_port,
            "schema": "http",
            "password": token,
            "extra": {"endpoint": "/hooks/egov-alerts", "timeout": 10},
        }
        return {
            "AIRFLOW_CONN_EGOV_ALERTS_SMTP": json.dumps(smtp),
            "AIRFLOW_CONN_EGOV_ALERTS_WEBHOOK": json.dumps(webhook),
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sinks() -> Iterator[Sinks]:
    from aiosmtpd.controller import Controller

    holder: dict[str, Sinks] = {}

    class SmtpHandler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            message = email.message_from_bytes(envelope.original_content or envelope.content)
            holder["sinks"].mails.add(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
            return "250 Message accepted for delivery"

    class HttpHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = holder["sinks"].http_status[0]
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"{}")
            if status < 300:
                holder["sinks"].posts.add(Post(self.path, dict(self.headers), json.loads(body)))

        def log_message(self, *args) -> None:
            pass

    controller = Controller(SmtpHandler(), hostname="127.0.0.1", port=_free_port())
    controller.start()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), HttpHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    holder["sinks"] = Sinks(smtp_port=controller.port, http_port=httpd.server_address[1])
    try:
        yield holder["sinks"]
    finally:
        httpd.shutdown()
        httpd.server_close()
        controller.stop()


@pytest.fixture
def connections(sinks: Sinks, monkeypatch: pytest.MonkeyPatch) -> Sinks:
    for key, value in sinks.connections().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    sinks.http_status[0] = 200
    return sinks


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_EGOV_ALERTS_SMTP", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_EGOV_ALERTS_WEBHOOK", raising=False)


# --------------------------------------------------------------------------- unit: the message


def _failure_context(**ti_overrides: Any) -> dict[str, Any]:
    from airflow.sdk import DAG

    ti = SimpleNamespace(
        dag_id="egov_nightly_ingest",
        task_id="pull_dossiers",
        run_id="scheduled__2026-09-29T18:30:00+00:00",
        try_number=4,
        max_tries=3,
        map_index=11,
        rendered_map_index="Hà Nội",
        hostname="worker-2",
        log_url=(
            "http://airflow.egov.example:8080/dags/egov_nightly_ingest/runs/"
            "scheduled__2026-09-29T18%3A30%3A00%2B00%3A00/tasks/pull_dossiers/mapped/11?try_number=4"
        ),
    )
    for key, value in ti_overrides.items():
        setattr(ti, key, value)
    doc = (Path(__file__).parents[1] / "dags" / "egov_nightly_ingest.py").read_text()
    doc_md = doc.split('DOC = """', 1)[1].split('"""', 1)[0]
    return {
        "ti": ti,
        "dag": DAG(dag_id="egov_nightly_ingest", schedule=None, doc_md=doc_md),
        "exception": PermissionError("401 Unauthorized from <portal> for token ****"),
    }


def test_failure_alert_names_what_failed_where_to_look_and_what_to_do(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    alert = build_failure_alert(_failure_context())

    assert alert.kind == "task_failed"
    assert alert.subject == (
        "[egov-index] FAILED egov_nightly_ingest.pull_dossiers (run scheduled__2026-09-29T18:30:00+00:00)"
    )
    assert "failed on its last try (4 of 4)" in alert.summary
    assert alert.error == "PermissionError: 401 Unauthorized from <portal> for token ****"
    assert alert.map_index == "11 (Hà Nội)"
    assert alert.log_url and alert.log_url.endswith("/tasks/pull_dossiers/mapped/11?try_number=4")
    assert alert.run_url == (
        "http://airflow.egov.example:8080/dags/egov_nightly_ingest/runs/scheduled__2026-09-29T18%3A30%3A00%2B00%3A00"
    )
    assert alert.dag_url == "http://airflow.egov.example:8080/dags/egov_nightly_ingest"
    # the DAG's own "When it fails" advice, as plain text
    assert "SourceRejectedError (401/403/4xx)" in alert.guidance
    assert "egov_service_portal" in alert.guidance and "**" not in alert.guidance
    assert "clear the failed task" in alert.guidance

    text = alert.text()
    for expected in ("WHAT", "WHERE TO LOOK", "WHAT TO DO", "worker-2", "Try", "4 of 4", alert.log_url):
        assert expected in text
    html_body = alert.html()
    assert "&lt;portal&gt;" in html_body and "<portal>" not in html_body  # escaped
    assert f"href='{alert.log_url}'" in html_body
    payload = json.loads(json.dumps(alert.payload()))
    assert payload["dag_id"] == "egov_nightly_ingest" and payload["task_id"] == "pull_dossiers"
    assert payload["text"].startswith(alert.subject)


def test_failure_alert_without_exception_or_docs_still_reads_well(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    context = _failure_context(map_index=-1, rendered_map_index=None)
    context.update(exception=None, dag=None)
    alert = build_failure_alert(context)
    assert alert.map_index is None and "Mapped task" not in alert.text()
    assert alert.error == "(no exception recorded: see the task log)"
    assert alert.guidance.startswith("Open the task log first")


def test_long_errors_are_cut_to_one_line():
    summary = alerts.error_summary(ValueError("x" * 5000 + "\nsecond line"))
    assert summary and len(summary) == alerts.MAX_ERROR_CHARS and "\n" not in summary


def test_error_summary_carries_the_exception_notes():
    """The ranking adds a note naming the period that failed and those published before it."""
    error = FileNotFoundError("no commune-report snapshot for 2026-Q2")
    error.add_note("ranking of 2026-Q2 failed; published before it in this run: 2026-Q1")
    assert alerts.error_summary(error) == (
        "FileNotFoundError: no commune-report snapshot for 2026-Q2 "
        "ranking of 2026-Q2 failed; published before it in this run: 2026-Q1"
    )


def test_a_long_message_is_cut_before_the_notes():
    error = ValueError("x" * 5000)
    error.add_note("ranking of 2026-Q2 failed; published before it in this run: 2026-Q1")
    summary = alerts.error_summary(error)
    assert summary and len(summary) == alerts.MAX_ERROR_CHARS
    assert summary.startswith("ValueError: xxx") and summary.endswith("published before it in this run: 2026-Q1")


def test_deadline_alert_from_the_context_airflow_passes():
    context = {  # shape of Deadline.handle_miss's context (DAGRunResponse JSON + deadline)
        "dag_run": {
            "dag_run_id": "scheduled__2026-09-29T18:30:00+00:00",
            "dag_id": "egov_nightly_ingest",
            "state": "running",
            "queued_at": "2026-09-29T18:30:02.5Z",
            "start_date": "2026-09-29T18:30:04Z",
        },
        "deadline": {"id": "0199", "deadline_time": datetime(2026, 9, 29, 20, 30, 2, tzinfo=UTC)},
    }
    alert = build_deadline_alert(context, expected="The nightly ingest finishes within 2 h of being queued")
    assert alert.kind == "deadline_missed"
    assert alert.subject == (
        "[egov-index] LATE egov_nightly_ingest: run scheduled__2026-09-29T18:30:00+00:00 missed its deadline"
    )
    assert alert.deadline_time == "2026-09-30 03:30:02 Asia/Ho_Chi_Minh (2026-09-29T20:30:02+00:00)"
    assert alert.run_state == "running" and alert.task_id is None
    assert "queued at 2026-09-30 01:30:02 Asia/Ho_Chi_Minh" in alert.guidance
    assert alert.run_url.endswith(
        "/dags/egov_nightly_ingest/runs/scheduled__2026-09-29T18%3A30%3A00%2B00%3A00"
    )
    assert "within 2 h of being queued" in alert.text()


def test_deadline_alert_for_a_run_that_failed_before_its_deadline():
    """Airflow prunes a run's deadlines only when the run succeeds: a failed run still alerts."""
    alert = build_deadline_alert(
        {"dag_run": {"dag_run_id": "r1", "dag_id": "egov_ranking", "state": "failed"}, "deadline": {}}
    )
    assert "failed and is still not complete" in alert.summary
    assert "clear the failed task" in alert.guidance and alert.run_state == "failed"


# --------------------------------------------------------------------------- unit: the channels


def test_no_connection_configured_skips_both_channels_with_a_log_line(
    no_connections: None, caplog: pytest.LogCaptureFixture
):
    alert = build_failure_alert(_failure_context())
    with caplog.at_level(logging.INFO, logger="egov_index.alerts"):
        results = send_alert(alert)  # must not raise
    assert results == {"email": "skipped", "webhook": "skipped"}
    assert "Alert email skipped: no Airflow Connection 'egov_alerts_smtp' is configured" in caplog.text
    assert "Alert webhook skipped: no Airflow Connection 'egov_alerts_webhook' is configured" in caplog.text


def test_notifier_without_connections_does_not_raise(no_connections: None, caplog: pytest.LogCaptureFixture):
    from egov_index.dag_defaults import DEFAULT_ARGS

    (notifier,) = DEFAULT_ARGS["on_failure_callback"]
    with caplog.at_level(logging.INFO, logger="egov_index.alerts"):
        notifier(_failure_context())  # what the task runner calls
    assert caplog.text.count("skipped: no Airflow Connection") == 2


def test_both_channels_deliver_to_the_sinks(connections: Sinks):
    alert = build_failure_alert(_failure_context(run_id="scheduled__unit-both"))
    assert send_alert(alert) == {"email": "sent", "webhook": "sent"}

    mail = connections.mails.wait_for(lambda m: "scheduled__unit-both" in m.subject, timeout=10)
    assert mail.rcpt_tos == ["ict-officer@egov.example", "data-team@egov.example"]
    assert mail.message["From"] == "airflow@egov.example" and mail.message["X-Egov-Alert"] == "task_failed"
    assert "pull_dossiers" in mail.html and "- DataQualityBlocked: the log names the dataset" in mail.html
    post = connections.posts.wait_for(lambda p: p.body["run_id"] == "scheduled__unit-both", timeout=10)
    assert post.path == "/hooks/egov-alerts"
    assert post.headers["Authorization"] == "Bearer hook-token"
    assert post.body["kind"] == "task_failed" and post.body["log_url"] == alert.log_url


def test_one_failing_channel_does_not_stop_the_other(connections: Sinks, caplog: pytest.LogCaptureFixture):
    connections.http_status[0] = 500
    alert = build_failure_alert(_failure_context(run_id="scheduled__unit-500"))
    with caplog.at_level(logging.INFO, logger="egov_index.alerts"):
        results = send_alert(alert)
    assert results["email"] == "sent" and results["webhook"].startswith("failed: HTTPError: 500")
    assert "Alert webhook via Connection 'egov_alerts_webhook' failed" in caplog.text
    connections.mails.wait_for(lambda m: "scheduled__unit-500" in m.subject, timeout=10)


def test_every_configured_channel_failing_raises(connections: Sinks, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AIRFLOW_CONN_EGOV_ALERTS_SMTP")
    connections.http_status[0] = 503
    with pytest.raises(AlertDeliveryError, match="no alert channel delivered"):
        send_alert(build_failure_alert(_failure_context()))


def test_webhook_url_forms():
    def conn(**kw: Any) -> SimpleNamespace:
        base = {"conn_id": "x", "host": None, "port": None, "schema": None, "extra_dejson": {}}
        return SimpleNamespace(**{**base, **kw})

    assert alerts.webhook_url(
        conn(host="chat.egov.vn", schema="https", extra_dejson={"endpoint": "hooks/a"})
    ) == ("https://chat.egov.vn/hooks/a")
    assert alerts.webhook_url(conn(host="10.0.0.5", port=8443, schema="https")) == "https://10.0.0.5:8443"
    assert alerts.webhook_url(conn(host="https://chat.egov.vn/hooks/abc")) == "https://chat.egov.vn/hooks/abc"
    with pytest.raises(ValueError, match="no host"):
        alerts.webhook_url(conn())


def test_deadline_callback_sends_the_same_kind_of_alert(connections: Sinks):
    results = alerts.deadline_missed(
        context={
            "dag_run": {"dag_run_id": "manual__unit-deadline", "dag_id": "egov_ranking", "state": "running"},
            "deadline": {"id": "1", "deadline_time": "2026-10-01T03:00:00+00:00"},
        },
        expected="The ranking finishes within 1 h of being queued",
    )
    assert results == {"email": "sent", "webhook": "sent"}
    mail = connections.mails.wait_for(lambda m: "manual__unit-deadline" in m.subject, timeout=10)
    assert mail.subject.startswith("[egov-index] LATE egov_ranking") and "within 1 h" in mail.html


# --------------------------------------------------------------------------- unit: the wiring


def test_every_dag_alerts_on_failure_and_has_a_run_deadline():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import SyncCallback
    from airflow.sdk.definitions.deadline import DagRunQueuedAtDeadline

    from egov_index.config import PROJECT_ROOT

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    budgets = {"egov_nightly_ingest": timedelta(hours=2), "egov_ranking": timedelta(hours=1)}
    budgets["egov_maintenance"] = timedelta(hours=1)
    for dag_id, budget in budgets.items():
        dag = bag.dags[dag_id]
        for task in dag.tasks:
            assert any(isinstance(cb, alerts.EgovAlertNotifier) for cb in task.on_failure_callback), task
        (deadline,) = dag.deadline
        assert isinstance(deadline.reference, DagRunQueuedAtDeadline)
        assert deadline.interval == budget
        assert isinstance(deadline.callback, SyncCallback)
        assert deadline.callback.path == "egov_index.alerts.deadline_missed"
        assert "of being queued" in deadline.callback.kwargs["expected"]


def test_deadlines_are_left_out_under_dags_test_and_when_switched_off(monkeypatch: pytest.MonkeyPatch):
    from egov_index.dag_defaults import deadlines_enabled, run_deadline

    assert deadlines_enabled(["airflow", "scheduler"])
    assert not deadlines_enabled(["/venv/bin/airflow", "dags", "test", "egov_ranking"])
    monkeypatch.setenv("EGOV_DEADLINES", "off")
    assert run_deadline(timedelta(hours=1), "EGOV_X", "X") == []
    monkeypatch.setenv("EGOV_DEADLINES", "on")
    monkeypatch.setenv("EGOV_X", "90")
    (alert,) = run_deadline(timedelta(hours=1), "EGOV_X", "X")
    assert alert.interval == timedelta(minutes=90) and alert.callback.kwargs == {
        "expected": "X finishes within 90 min of being queued"
    }


# --------------------------------------------------------------------------- through Airflow


@pytest.fixture(scope="module")
def migrated_db() -> Path:
    """The session's migrated database (tests/airflow_home.py); each test copies the file."""
    return session_migrated_db()


def _airflow_home(
    base: Path, migrated_db: Path, sinks: Sinks, dag_file: str, dag_source: str
) -> dict[str, str]:
    """A private Airflow home (copy of the migrated DB) whose DAG folder holds one demo DAG.

    One folder per test: `airflow dags test` writes every DAG of its folder to the DB *without*
    deadlines (see dag_defaults.deadlines_enabled), which must not leak into the deployment test."""
    dags = base / "dags"
    dags.mkdir(parents=True)
    (dags / dag_file).write_text(dag_source)
    env = airflow_env(base / "airflow", base / "data")
    (base / "airflow").mkdir()
    shutil.copy(migrated_db, base / "airflow" / "airflow.db")
    env.update(sinks.connections())
    env.update({"AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__API__BASE_URL": BASE_URL})
    return env


def _assert_links(url: str, dag_id: str, run_id: str, task_id: str | None = None) -> None:
    assert url.startswith(BASE_URL.rstrip("/") + f"/dags/{dag_id}/runs/"), url
    assert run_id in unquote(url)
    if task_id:
        assert f"/tasks/{task_id}" in url


@pytest.mark.e2e
def test_failed_task_alerts_under_airflow_dags_test(tmp_path: Path, migrated_db: Path, sinks: Sinks):
    """``airflow dags test`` runs the task in-process through the task runner, which calls the
    task's ``on_failure_callback`` (our notifier) after the failed try, as a worker does."""
    env = _airflow_home(tmp_path, migrated_db, sinks, "egov_alert_demo.py", FAILING_DAG)
    with pytest.raises(RuntimeError, match="egov_alert_demo failed"):
        dags_test(env, "egov_alert_demo")

    mail = sinks.mails.wait_for(lambda m: "egov_alert_demo.pull_source" in m.subject, timeout=60)
    post = sinks.posts.wait_for(lambda p: p.body.get("dag_id") == "egov_alert_demo", timeout=60)
    run_id = post.body["run_id"]
    assert run_id.startswith("manual__") and run_id in mail.subject
    assert mail.rcpt_tos == ["ict-officer@egov.example", "data-team@egov.example"]
    log_url = post.body["log_url"]
    _assert_links(log_url, "egov_alert_demo", run_id, "pull_source")
    assert log_url.endswith("?try_number=1") and log_url in mail.html
    assert "ValueError: the reporting API answered 503 three times" in mail.html
    assert "the demo source is down" in mail.html  # the DAG's own "When it fails" advice
    assert post.body["task_id"] == "pull_source" and post.body["try_number"] == 1
    assert post.body["error"] == "ValueError: the reporting API answered 503 three times"
    assert post.headers["Authorization"] == "Bearer hook-token"


@dataclass
class Component:
    name: str
    process: subprocess.Popen
    log: Path

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# Later than the Task SDK's default execution_api_timeout (5 s), well inside the deployment's (see
# local_airflow.EXECUTION_API_TIMEOUT_S): each task's start call is answered this late.
START_DELAY_S = 8.0
# How long a loaded 2-core machine may take to start the api-server (measured 5-20 s).
API_START_BOUND_S = 180.0


def _wait_until_serving(url: str, component: Component, bound_s: float) -> None:
    """Poll ``url`` until it answers 200; fail with the component's log if it exits or ``bound_s`` passes."""
    end = time.monotonic() + bound_s
    while True:
        if component.process.poll() is not None:
            pytest.fail(f"{component.name} exited {component.process.returncode}:\n{component.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > end:
            pytest.fail(f"{component.name} not serving {url} after {bound_s:.0f} s:\n{component.tail()}")
        time.sleep(0.5)


@pytest.fixture
def deployment(
    tmp_path: Path, migrated_db: Path, sinks: Sinks
) -> Iterator[tuple[dict[str, str], list[Component], SlowAnswers]]:
    """api-server + scheduler + dag-processor on a SQLite home, LocalExecutor (no triggerer needed:
    the deadline callback is a SyncCallback, run by the executor)."""
    port = _free_port()
    slow = SlowAnswers(f"http://127.0.0.1:{port}", "PATCH", r"^/execution/task-instances/[^/]+/run$", START_DELAY_S)
    env = {
        **_airflow_home(tmp_path, migrated_db, sinks, "egov_late_demo.py", LATE_DAG),
        "EGOV_DEADLINE_TEST_MINUTES": "0.1",  # 6 s after the run is queued
        "EGOV_TEST_RELEASE_FILE": str(tmp_path / "release"),
        "AIRFLOW__API__PORT": str(port),
        # the workers reach the execution API through the proxy, which answers their start calls late
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{slow.url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__CORE__PARALLELISM": "4",
    }
    # The DAGs in the DB before the scheduler starts (no waiting for the dag-processor's first pass).
    subprocess.run([airflow_bin(), "dags", "reserialize"], env=env, check=True, capture_output=True)
    subprocess.run(
        [airflow_bin(), "dags", "unpause", "egov_late_demo"], env=env, check=True, capture_output=True
    )
    components: list[Component] = []
    slow.__enter__()
    try:
        for name in ("api-server", "scheduler", "dag-processor"):
            log = tmp_path / "logs" / f"{name}.log"
            log.parent.mkdir(exist_ok=True)
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [airflow_bin(), name],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            components.append(Component(name, process, log))
        # A real deployment starts its workers once the api-server is healthy (compose: depends_on
        # service_healthy); the run is triggered only then, however long a loaded machine takes to start it.
        _wait_until_serving(f"http://127.0.0.1:{port}/api/v2/monitor/health", components[0], API_START_BOUND_S)
        yield env, components, slow
    finally:
        Path(env["EGOV_TEST_RELEASE_FILE"]).touch()  # let the sensor finish if anything still runs it
        # Stop in reverse order, one at a time: running task processes still report to the api-server.
        for component in reversed(components):  # each runs in its own session: stop its process group
            t0 = time.monotonic()
            try:
                os.killpg(component.process.pid, signal.SIGTERM)
                component.process.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(component.process.pid, signal.SIGKILL)
                component.process.wait(timeout=10)
            print(f"{component.name} stopped in {time.monotonic() - t0:.1f} s")
        slow.__exit__(None, None, None)


@pytest.mark.e2e
def test_real_deployment_failure_and_missed_deadline_alerts(
    deployment: tuple[dict[str, str], list[Component], SlowAnswers], sinks: Sinks
):
    """Triggered run of ``egov_late_demo``: ``broken_source`` fails in a LocalExecutor worker process
    (on_failure_callback there); ``wait_for_release`` keeps the run open past its 6 s deadline
    (DAGRUN_QUEUED_AT + 0.1 min), which the scheduler detects and hands to the executor."""
    env, components, slow = deployment

    def alive() -> str | None:
        dead = [c for c in components if c.process.poll() is not None]
        return "; ".join(f"{c.name} exited {c.process.returncode}:\n{c.tail()}" for c in dead) or None

    started = time.monotonic()
    run_id = f"manual__alerts-{secrets.token_hex(4)}"
    subprocess.run(
        [airflow_bin(), "dags", "trigger", "egov_late_demo", "--run-id", run_id],
        env=env,
        check=True,
        capture_output=True,
    )
    try:
        failed = sinks.posts.wait_for(
            lambda p: p.body.get("kind") == "task_failed" and p.body.get("run_id") == run_id, 150, alive
        )
        late = sinks.posts.wait_for(
            lambda p: p.body.get("kind") == "deadline_missed" and p.body.get("run_id") == run_id, 150, alive
        )
        late_mail = sinks.mails.wait_for(
            lambda m: "LATE egov_late_demo" in m.subject and run_id in m.subject, 30
        )
        poked = Path(env["EGOV_TEST_RELEASE_FILE"] + ".poked")
        end = time.monotonic() + 150
        while not poked.exists():  # the sensor got past its (late) start and poked
            if problem := alive():
                pytest.fail(problem)
            if time.monotonic() > end:
                pytest.fail(f"the sensor never poked within 150 s; alerts: {[p.body for p in sinks.posts.items]}")
            time.sleep(0.5)
    except BaseException:
        for component in components:
            print(f"--- {component.name}\n{component.tail(80)}")
        raise
    elapsed = time.monotonic() - started
    Path(env["EGOV_TEST_RELEASE_FILE"]).touch()

    # Both start calls were answered late (the fault happened), and the sensor was not failed by it: with
    # Airflow's default 5 s timeout the worker gives a task up when its start is answered late, and the
    # scheduler fails it without running it ("the task instance's state attribute is running").
    assert slow.delayed >= 2, slow.delayed
    sensor_failures = [p.body for p in sinks.posts.items if p.body.get("task_id") == "wait_for_release"]
    assert not sensor_failures, sensor_failures
    assert failed.body["task_id"] == "broken_source"
    # The worker's own callback, with the task's exception: the task ran. (Before the workers' execution
    # API timeout was raised, a late start answer made the executor report the task failed unrun, and the
    # scheduler sent the alert without an exception: "(no exception recorded: see the task log)".)
    assert failed.body["error"] == "RuntimeError: portal certificate expired"
    _assert_links(failed.body["log_url"], "egov_late_demo", run_id, "broken_source")
    assert failed.body["hostname"]  # the worker's host name

    assert late.body["dag_id"] == "egov_late_demo"
    assert late.body["run_state"] == "running"  # still waiting: the run is late, not failed
    assert late.body["expected"] == "The demo run finishes within 6 s of being queued"
    assert late.body["deadline_time"] and "Asia/Ho_Chi_Minh" in late.body["deadline_time"]
    _assert_links(late.body["run_url"], "egov_late_demo", run_id)
    assert late.body["run_url"] in late_mail.html
    print(f"trigger -> both alerts in {elapsed:.1f} s")
