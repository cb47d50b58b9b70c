"""Alerts to the ICT officers: a task failed, or a run missed its deadline.

Two channels, each configured by an Airflow Connection and each optional:

* e-mail through the SMTP provider's ``SmtpHook`` (Connection ``egov_alerts_smtp``, type smtp;
  recipients in the extra ``to``),
* a JSON ``POST`` to a webhook (Connection ``egov_alerts_webhook``, type http; path in the extra
  ``endpoint``, bearer token in the password).

A channel whose Connection does not exist is skipped with a log line. Sending never raises for a
missing or failing channel; only when every configured channel failed does the callback raise
:class:`AlertDeliveryError`, so the failure shows in the task log / the callback's state.

Wiring (``egov_index.dag_defaults``): :class:`EgovAlertNotifier` is every task's
``on_failure_callback`` (runs after the last try, in the task's own process on the worker);
:func:`deadline_missed` is the ``SyncCallback`` of the DAGs' Deadline Alerts (the scheduler detects
the miss, the executor runs the callback). See docs/alerts.md.

Module level stays light (it is imported while DAG files are parsed): no requests, no provider
hooks until a message is actually sent.
"""

from __future__ import annotations

import html
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

SMTP_CONN_ID = "egov_alerts_smtp"
WEBHOOK_CONN_ID = "egov_alerts_webhook"
LOCAL_TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_BASE_URL = "http://localhost:8080/"
MAX_ERROR_CHARS = 600
MAX_GUIDANCE_CHARS = 2500

AlertKind = Literal["task_failed", "deadline_missed"]


class AlertDeliveryError(RuntimeError):
    """Every configured alert channel failed (a missing channel is not a failure)."""


@dataclass(frozen=True)
class Alert:
    """One alert, independent of the channel: what happened, where to look, what to do."""

    kind: AlertKind
    subject: str
    summary: str
    dag_id: str
    run_id: str
    run_url: str
    dag_url: str
    task_id: str | None = None
    map_index: str | None = None
    try_number: int | None = None
    max_tries: int | None = None
    error: str | None = None
    log_url: str | None = None
    hostname: str | None = None
    deadline_time: str | None = None
    expected: str | None = None
    run_state: str | None = None
    guidance: str = ""

    def facts(self) -> list[tuple[str, str]]:
        """The labelled facts, in reading order (only the ones known)."""
        rows: list[tuple[str, str | None]] = [
            ("Pipeline (DAG)", self.dag_id),
            ("Task", self.task_id),
            ("Mapped task", self.map_index),
            ("Run", self.run_id),
            (
                "Try",
                f"{self.try_number} of {self.max_tries + 1}"
                if self.try_number and self.max_tries is not None
                else None,
            ),
            ("Error", self.error),
            ("Worker", self.hostname),
            ("Deadline", self.deadline_time),
            ("Expected", self.expected),
            ("Run state now", self.run_state),
        ]
        return [(label, value) for label, value in rows if value]

    def links(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str | None]] = [
            ("Task log", self.log_url),
            ("The run (all its tasks)", self.run_url),
            ("The pipeline's page and docs (Docs button: 'When it fails')", self.dag_url),
        ]
        return [(label, url) for label, url in rows if url]

    def text(self) -> str:
        """Plain-text body (e-mail readers without HTML, the webhook's ``text``)."""
        width = max(len(label) for label, _ in self.facts())
        lines = [self.summary, "", "WHAT"]
        lines += [f"  {label.ljust(width)}  {value}" for label, value in self.facts()]
        lines += ["", "WHERE TO LOOK"]
        lines += [f"  {label}: {url}" for label, url in self.links()]
        if self.guidance:
            lines += ["", "WHAT TO DO", *(f"  {line}" if line else "" for line in self.guidance.splitlines())]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        """HTML body of the e-mail (everything escaped)."""
        esc = html.escape
        facts = "".join(
            f"<tr><th align='left' style='padding-right:1em'>{esc(label)}</th><td>{esc(value)}</td></tr>"
            for label, value in self.facts()
        )
        links = "".join(
            f"<li>{esc(label)}: <a href='{esc(url)}'>{esc(url)}</a></li>" for label, url in self.links()
        )
        guidance = (
            f"<h3>What to do</h3><pre style='white-space:pre-wrap'>{esc(self.guidance)}</pre>"
            if self.guidance
            else ""
        )
        return (
            f"<p><b>{esc(self.summary)}</b></p><h3>What</h3><table>{facts}</table>"
            f"<h3>Where to look</h3><ul>{links}</ul>{guidance}"
        )

    def payload(self) -> dict[str, Any]:
        """JSON body of the webhook: ``text`` (chat tools show it) plus every field."""
        return {"text": f"{self.subject}\n\n{self.text()}", **asdict(self)}


# --------------------------------------------------------------------------- building alerts


def api_base_url() -> str:
    """``[api] base_url``: what ``ti.log_url`` is built from, so every link points at the same UI."""
    try:
        from airflow.sdk.configuration import conf

        return conf.get("api", "base_url", fallback=DEFAULT_BASE_URL) or DEFAULT_BASE_URL
    except Exception:  # outside an Airflow process (plain unit use)
        return os.environ.get("AIRFLOW__API__BASE_URL", DEFAULT_BASE_URL)


def dag_url(dag_id: str, base_url: str | None = None) -> str:
    return f"{(base_url or api_base_url()).rstrip('/')}/dags/{dag_id}"


def run_url(dag_id: str, run_id: str, base_url: str | None = None) -> str:
    return f"{dag_url(dag_id, base_url)}/runs/{quote(run_id)}"


def error_summary(error: BaseException | str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    """``Type: message`` (then the exception's notes, e.g. which periods were published before the one that
    failed) on one line, cut to ``limit`` characters."""
    if error is None:
        return None
    def one_line(text: str) -> str:
        return " ".join(text.split())

    def cut(text: str, room: int) -> str:
        return text if len(text) <= room else text[: max(room - 1, 0)] + "…"

    if isinstance(error, str):
        return cut(one_line(error), limit)
    notes = one_line(" ".join(map(str, getattr(error, "__notes__", ()))))
    notes = cut(notes, limit // 2)  # the notes keep room: the message is cut first
    message = cut(one_line(f"{type(error).__name__}: {error}"), limit - len(notes) - 1 if notes else limit)
    return f"{message} {notes}" if notes else message


def when_it_fails(doc_md: str | None, limit: int = MAX_GUIDANCE_CHARS) -> str:
    """The DAG documentation's "When it fails" section (our DAG docs all have one), as plain text."""
    if not doc_md:
        return ""
    match = re.search(r"\*\*When it fails\.?\*\*(.*?)(?=\n\s*\*\*[^*\n]+\*\*|\n#|\Z)", doc_md, re.S)
    if not match:
        return ""
    section = "\n".join(line.rstrip() for line in match.group(1).strip().splitlines())
    section = re.sub(r"\*+([^*\n]+?)\*+", r"\1", section).replace("`", "")
    return section if len(section) <= limit else section[: limit - 1] + "…"


def format_time(value: datetime | str | None, tz_name: str = LOCAL_TIMEZONE) -> str | None:
    """``2026-11-23 03:30:00 Asia/Ho_Chi_Minh (2026-11-22T20:30:00+00:00)``."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    from zoneinfo import ZoneInfo

    local = value.astimezone(ZoneInfo(tz_name))
    utc = value.astimezone(UTC).replace(microsecond=0)
    return f"{local:%Y-%m-%d %H:%M:%S} {tz_name} ({utc.isoformat()})"


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def build_failure_alert(context: Mapping[str, Any]) -> Alert:
    """The alert for a task that failed for good (the ``on_failure_callback`` context)."""
    ti = context["ti"]
    dag_id, task_id, run_id = ti.dag_id, ti.task_id, ti.run_id
    base = api_base_url()
    map_index = _get(ti, "map_index")
    mapped = None
    if map_index is not None and map_index >= 0:
        rendered = _get(ti, "rendered_map_index")
        mapped = f"{map_index} ({rendered})" if rendered and rendered != str(map_index) else str(map_index)
    try_number = _get(ti, "try_number")
    max_tries = _get(ti, "max_tries")
    error = error_summary(context.get("exception"))
    dag = context.get("dag")
    guidance = when_it_fails(_get(dag, "doc_md") if dag is not None else None)
    guidance = (guidance + "\n\n" if guidance else "") + (
        "Open the task log first: the last lines name the cause. When the cause is fixed, clear the "
        "failed task in the Airflow UI (the run > the task > Clear) so it runs again; the tasks after it "
        "follow (they are marked upstream_failed until then)."
    )
    summary = f'The task "{task_id}" of the pipeline "{dag_id}" failed'
    summary += (
        f" on its last try ({try_number} of {max_tries + 1})."
        if try_number and max_tries is not None
        else "."
    )
    return Alert(
        kind="task_failed",
        subject=f"[egov-index] FAILED {dag_id}.{task_id} (run {run_id})",
        summary=summary + " It will not be retried automatically.",
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=mapped,
        try_number=try_number,
        max_tries=max_tries,
        error=error or "(no exception recorded: see the task log)",
        log_url=_get(ti, "log_url"),
        hostname=_get(ti, "hostname"),
        run_url=run_url(dag_id, run_id, base),
        dag_url=dag_url(dag_id, base),
        guidance=guidance,
    )


def build_deadline_alert(context: Mapping[str, Any], expected: str | None = None) -> Alert:
    """The alert for a run that missed its deadline.

    ``context`` is what Airflow 3.3 hands a Deadline Alert callback:
    ``{"dag_run": <DAGRunResponse as JSON>, "deadline": {"id", "deadline_time"}}``.
    """
    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id = str(dag_run.get("dag_id", "?"))
    run_id = str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "?")
    base = api_base_url()
    due = format_time(deadline.get("deadline_time"))
    state = dag_run.get("state")
    details = [
        f"queued at {format_time(dag_run.get('queued_at'))}" if dag_run.get("queued_at") else None,
        f"started at {format_time(dag_run.get('start_date'))}" if dag_run.get("start_date") else None,
    ]
    if state == "failed":
        summary = (
            f'The run "{run_id}" of the pipeline "{dag_id}" failed and is still not complete at its '
            f"deadline {due}."
        )
        guidance = (
            "A task of this run failed earlier (its failure alert names the task and the cause) and nobody "
            "has re-run it yet, so this run's data is late. Open the run page, read the failed task's log, "
            "fix the cause and clear the failed task. If the data will not be ready before the working "
            "day, tell the users of the ranking that today's figures are late."
        )
    else:
        summary = f'The run "{run_id}" of the pipeline "{dag_id}" has not finished by its deadline {due}.'
        guidance = (
            "The run keeps going: this alert does not stop it. Open the run page and look for tasks that "
            "are running for unusually long, queued (no free worker or pool slot), up for retry (a source "
            "is failing: see that task's log) or waiting on the previous day's run. If the data will not "
            "be ready before the working day, tell the users of the ranking that today's figures are late."
        )
    if any(details):
        guidance = "The run was " + ", ".join(d for d in details if d) + ".\n\n" + guidance
    return Alert(
        kind="deadline_missed",
        subject=f"[egov-index] LATE {dag_id}: run {run_id} missed its deadline",
        summary=summary,
        dag_id=dag_id,
        run_id=run_id,
        run_url=run_url(dag_id, run_id, base),
        dag_url=dag_url(dag_id, base),
        deadline_time=due,
        expected=expected,
        run_state=str(state) if state else None,
        guidance=guidance,
    )


# --------------------------------------------------------------------------- sending


def get_connection_or_none(conn_id: str) -> Any | None:
    """The Airflow Connection ``conn_id`` or None when it is not defined (any secrets backend)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _address_list(value: str | Iterable[str] | None) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [a.strip() for a in re.split(r"[,;]", value) if a.strip()]
    return [str(a).strip() for a in value if str(a).strip()]


def send_email(alert: Alert, conn: Any) -> None:
    """Send through the SMTP provider's hook (host/port/login/password/ssl/tls from the Connection)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    extra = conn.extra_dejson
    to = _address_list(extra.get("to"))
    if not to:
        raise ValueError(f"Connection {conn.conn_id!r} has no recipients: set 'to' in its extra")
    with SmtpHook(smtp_conn_id=conn.conn_id) as hook:
        hook.send_email_smtp(
            to=to,
            cc=_address_list(extra.get("cc")) or None,
            from_email=extra.get("from_email"),
            subject=alert.subject,
            html_content=alert.html(),
            custom_headers={"X-Egov-Alert": alert.kind},
        )


def webhook_url(conn: Any) -> str:
    """``schema://host:port`` + the extra ``endpoint`` (or a full URL in ``host``)."""
    host = (conn.host or "").strip()
    endpoint = str(conn.extra_dejson.get("endpoint") or "")
    if "://" in host:
        base = host.rstrip("/") if endpoint else host
    else:
        if not host:
            raise ValueError(f"Connection {conn.conn_id!r} has no host")
        base = f"{conn.schema or 'http'}://{host}" + (f":{conn.port}" if conn.port else "")
    if endpoint and not endpoint.startswith("/"):
        endpoint = "/" + endpoint
    return base + endpoint


def send_webhook(alert: Alert, conn: Any) -> None:
    """POST the alert as JSON; bearer token from the password (basic auth if a login is set)."""
    import requests

    extra = conn.extra_dejson
    headers = {"Content-Type": "application/json", **dict(extra.get("headers") or {})}
    auth = None
    if conn.login:
        auth = (conn.login, conn.password or "")
    elif conn.password:
        headers["Authorization"] = f"Bearer {conn.password}"
    response = requests.post(
        webhook_url(conn),
        json=alert.payload(),
        headers=headers,
        auth=auth,
        timeout=float(extra.get("timeout", 10)),
        verify=extra.get("verify", True),
    )
    response.raise_for_status()


def send_alert(
    alert: Alert,
    *,
    smtp_conn_id: str = SMTP_CONN_ID,
    webhook_conn_id: str = WEBHOOK_CONN_ID,
) -> dict[str, str]:
    """Send ``alert`` on every configured channel; returns ``{channel: "sent"|"skipped"|"failed: …"}``.

    Raises :class:`AlertDeliveryError` only when at least one channel is configured and none got it.
    """
    channels = (("email", smtp_conn_id, send_email), ("webhook", webhook_conn_id, send_webhook))
    results: dict[str, str] = {}
    for channel, conn_id, sender in channels:
        try:
            conn = get_connection_or_none(conn_id)
        except Exception as exc:  # a broken secrets backend must not hide the other channel
            conn, results[channel] = None, f"failed: cannot read Connection {conn_id!r}: {exc}"
            log.error("Alert %s not sent: cannot read Connection %r: %s", channel, conn_id, exc)
            continue
        if conn is None:
            results[channel] = "skipped"
            log.info("Alert %s skipped: no Airflow Connection %r is configured", channel, conn_id)
            continue
        try:
            sender(alert, conn)
        except Exception as exc:
            results[channel] = f"failed: {type(exc).__name__}: {exc}"
            log.error("Alert %s via Connection %r failed: %s: %s", channel, conn_id, type(exc).__name__, exc)
        else:
            results[channel] = "sent"
            log.info("Alert %s sent via Connection %r: %s", channel, conn_id, alert.subject)
    attempted = [r for r in results.values() if r != "skipped"]
    if attempted and "sent" not in attempted:
        raise AlertDeliveryError(f"no alert channel delivered {alert.subject!r}: {results}")
    return results


# --------------------------------------------------------------------------- Airflow entry points


class EgovAlertNotifier(BaseNotifier):
    """``on_failure_callback`` for every task (``DEFAULT_ARGS``): e-mail and/or webhook."""

    template_fields = ()

    def __init__(self, smtp_conn_id: str = SMTP_CONN_ID, webhook_conn_id: str = WEBHOOK_CONN_ID):
        super().__init__()
        self.smtp_conn_id = smtp_conn_id
        self.webhook_conn_id = webhook_conn_id

    def notify(self, context: Any) -> None:
        alert = build_failure_alert(context)
        results = send_alert(alert, smtp_conn_id=self.smtp_conn_id, webhook_conn_id=self.webhook_conn_id)
        self.log.info("Failure alert for %s.%s: %s", alert.dag_id, alert.task_id, results)


def deadline_missed(
    context: dict[str, Any],
    expected: str | None = None,
    smtp_conn_id: str = SMTP_CONN_ID,
    webhook_conn_id: str = WEBHOOK_CONN_ID,
) -> dict[str, str]:
    """Deadline Alert callback (``SyncCallback``: runs on the executor, e.g. a Celery/Local worker)."""
    alert = build_deadline_alert(context, expected=expected)
    results = send_alert(alert, smtp_conn_id=smtp_conn_id, webhook_conn_id=webhook_conn_id)
    log.info("Deadline alert for %s run %s: %s", alert.dag_id, alert.run_id, results)
    return results
