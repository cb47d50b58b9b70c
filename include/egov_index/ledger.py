"""Ingest ledger: one row per ingest attempt (API pull or inbox file), in a SQL database.

The URL comes from the caller (``Settings.sql_url``): SQLite in a file by default,
PostgreSQL in docker-compose. The schema is managed by the Alembic migrations shipped
in ``egov_index/migrations``; ``Ledger.open`` upgrades to head in one transaction that
also serialises concurrent openers (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
PostgreSQL), so two processes starting at once do not race on ``CREATE TABLE``.

An inbox file version is a ``succeeded`` entry with a ``file_key``; at most one such
entry per key exists (a partial unique index), older ones are marked ``superseded``.

An attempt whose worker dies (SIGKILL, out of memory, lost host, database gone before the
outcome was written) cannot close its entry. The next attempt of the same batch (same source,
dataset and partition) closes it: ``start`` marks every older ``running`` entry of the batch
``interrupted``, naming the new entry and run. Should that worker in fact still be alive (two
attempts of one batch at once), its own ``finish`` later replaces ``interrupted`` with the real
outcome. All timestamps are stored and returned in UTC.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

Source = Literal["reporting_api", "service_portal", "inbox"]
Outcome = Literal["running", "succeeded", "failed", "skipped_duplicate", "superseded", "interrupted"]
FinishOutcome = Literal["succeeded", "failed", "skipped_duplicate"]
FileStatus = Literal["new", "identical", "changed"]

SOURCES: tuple[str, ...] = get_args(Source)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
FINISH_OUTCOMES: tuple[str, ...] = get_args(FinishOutcome)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Our own version table: the database may be shared with Airflow, whose Alembic uses `alembic_version`.
VERSION_TABLE = "egov_alembic_version"
# pg_advisory_xact_lock key serialising migrations across processes (any constant bigint).
MIGRATION_LOCK_KEY = 0x65676F76_6C656467
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Alembic keeps the running migration in module globals (alembic.context, alembic.op): one at a time.
_MIGRATION_THREAD_LOCK = threading.Lock()

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, UTC datetimes out, on SQLite (naive storage) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"ledger timestamps must be timezone-aware, got {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LedgerEntry(Base):
    """One ingest attempt. Row counts are NULL until finished (and on failure)."""

    __tablename__ = "ingest_ledger"
    __table_args__ = (
        CheckConstraint(f"source IN ({_in_list(SOURCES)})", name="source"),
        CheckConstraint(f"outcome IN ({_in_list(OUTCOMES)})", name="outcome"),
        Index("ix_ingest_ledger_dataset_partition", "dataset", "partition"),
        Index("ix_ingest_ledger_file_key", "file_key"),
        Index(
            "uq_ingest_ledger_current_file_version",
            "file_key",
            unique=True,
            sqlite_where=text("outcome = 'succeeded' AND file_key IS NOT NULL"),
            postgresql_where=text("outcome = 'succeeded' AND file_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(250))
    source: Mapped[str] = mapped_column(String(32))
    dataset: Mapped[str] = mapped_column(String(64))
    partition: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    file_key: Mapped[str | None] = mapped_column(String(512))
    file_name: Mapped[str | None] = mapped_column(String(512))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rows_pulled: Mapped[int | None] = mapped_column(Integer)
    rows_snapshot: Mapped[int | None] = mapped_column(Integer)
    rows_quarantined: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)

    def as_dict(self) -> dict[str, Any]:
        return {column.key: getattr(self, column.key) for column in self.__table__.columns}


def interrupted_error(entry_id: int, run_id: str) -> str:
    """The error text of an entry found ``running`` when entry ``entry_id`` of run ``run_id`` started."""
    return (
        f"interrupted: still running when entry {entry_id} (run {run_id}) started the same batch. Its "
        "worker most likely died (killed, out of memory, host or database connection lost) before "
        "recording an outcome; nothing of it counts as succeeded. The newer entry's outcome stands."
    )


def alembic_config() -> Config:
    """Alembic configuration of the shipped migrations (pass a connection in ``attributes['connection']``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = _sqlite_file(parsed)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (so DDL is
        # transactional), wait for locks instead of failing, and let readers run beside a writer.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes can fail
        # at once with SQLITE_BUSY when another writer got in between; IMMEDIATE waits instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def _sqlite_migration_lock(url: URL) -> Iterator[None]:
    """Serialise openers of one SQLite file across processes (its first connection turns on WAL,
    which fails at once, without waiting, when another connection converts the file meanwhile)."""
    database = _sqlite_file(url)
    if database is None:
        yield
        return
    with open(f"{database}.migrate.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest migration; idempotent and safe to run concurrently."""
    config = alembic_config()
    with _MIGRATION_THREAD_LOCK, _sqlite_migration_lock(engine.url), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Ledger:
    """The ingest ledger on one database. Open with ``Ledger.open(url)``; close when done."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Ledger:
        """Connect and upgrade the schema to head."""
        engine = _engine(url)
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- ingest attempts ----------------------------------------------------------------------

    def start(
        self,
        *,
        run_id: str,
        source: Source,
        dataset: str,
        partition: str,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        file_name: str | None = None,
        file_sha256: str | None = None,
    ) -> int:
        """Record an ingest attempt as ``running``; returns its entry id.

        Older entries of the same batch (source, dataset, partition) still ``running`` are marked
        ``interrupted`` in the same transaction: their attempt never recorded an outcome.
        """
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
        if any(bound is not None and bound.tzinfo is None for bound in (window_start, window_end)):
            raise ValueError("window bounds must be timezone-aware")
        entry = LedgerEntry(
            run_id=run_id,
            source=source,
            dataset=dataset,
            partition=partition,
            window_start=window_start,
            window_end=window_end,
            file_name=file_name,
            file_sha256=file_sha256,
            started_at=datetime.now(UTC),
            outcome="running",
        )
        with self._sessions.begin() as session:
            session.add(entry)
            session.flush()
            session.execute(
                update(LedgerEntry)
                .where(
                    LedgerEntry.source == source,
                    LedgerEntry.dataset == dataset,
                    LedgerEntry.partition == partition,
                    LedgerEntry.outcome == "running",
                    LedgerEntry.id < entry.id,
                )
                .values(
                    outcome="interrupted",
                    finished_at=entry.started_at,
                    error=interrupted_error(entry.id, run_id),
                )
            )
            return entry.id

    def finish(
        self,
        entry_id: int,
        outcome: FinishOutcome,
        *,
        rows_pulled: int | None = None,
        rows_snapshot: int | None = None,
        rows_quarantined: int | None = None,
        payload_sha256: str | None = None,
        error: str | None = None,
    ) -> None:
        """Close a ``running`` entry with its outcome and counts (each entry is finished once).

        An entry a newer attempt marked ``interrupted`` while this one was in fact still working
        takes its real outcome here.
        """
        if outcome not in FINISH_OUTCOMES:
            raise ValueError(f"an entry finishes as one of {FINISH_OUTCOMES}, not {outcome!r}")
        with self._sessions.begin() as session:
            entry = self._open_entry(session, entry_id)
            entry.outcome = outcome
            entry.finished_at = datetime.now(UTC)
            entry.rows_pulled = rows_pulled
            entry.rows_snapshot = rows_snapshot
            entry.rows_quarantined = rows_quarantined
            entry.payload_sha256 = payload_sha256
            entry.error = error

    @staticmethod
    def _open_entry(session: Session, entry_id: int) -> LedgerEntry:
        """A ``running`` entry, or one presumed dead (``interrupted``) whose worker is finishing after all."""
        entry = session.get(LedgerEntry, entry_id, with_for_update=True)
        if entry is None:
            raise KeyError(f"no ledger entry {entry_id}")
        if entry.outcome not in ("running", "interrupted"):
            raise ValueError(f"ledger entry {entry_id} is already finished ({entry.outcome})")
        return entry

    def history(self, dataset: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest entries first, optionally of one dataset."""
        query = select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(limit)
        if dataset is not None:
            query = query.where(LedgerEntry.dataset == dataset)
        with self._sessions() as session:
            return [entry.as_dict() for entry in session.scalars(query)]

    def recent_row_counts(self, dataset: str, n: int, *, before_partition: str | None = None) -> list[int]:
        """``rows_pulled`` of the newest succeeded entry of each of the ``n`` latest partitions.

        Partitions are ordered by name (ISO days and periods sort in time order), newest first;
        ``before_partition`` leaves out that partition and later ones (the batch being checked).
        """
        latest = (
            select(func.max(LedgerEntry.id).label("id"))
            .where(LedgerEntry.dataset == dataset, LedgerEntry.outcome == "succeeded")
            .group_by(LedgerEntry.partition)
        )
        if before_partition is not None:
            latest = latest.where(LedgerEntry.partition < before_partition)
        query = (
            select(LedgerEntry.rows_pulled)
            .where(LedgerEntry.id.in_(latest), LedgerEntry.rows_pulled.is_not(None))
            .order_by(LedgerEntry.partition.desc())
            .limit(n)
        )
        with self._sessions() as session:
            return [int(count) for count in session.scalars(query) if count is not None]

    # --- inbox file versions ------------------------------------------------------------------

    def current_file_version(self, file_key: str) -> dict[str, Any] | None:
        """The entry holding the current version of a file (``succeeded``, with this key), if any."""
        query = select(LedgerEntry).where(
            LedgerEntry.file_key == file_key, LedgerEntry.outcome == "succeeded"
        )
        with self._sessions() as session:
            entry = session.scalars(query).one_or_none()
            return entry.as_dict() if entry is not None else None

    def file_status(self, file_key: str, sha256: str) -> FileStatus:
        """``new`` (never ingested), ``identical`` (same bytes as the current version) or ``changed``."""
        current = self.current_file_version(file_key)
        if current is None:
            return "new"
        return "identical" if current["file_sha256"] == sha256 else "changed"

    def record_file_version(self, file_key: str, sha256: str, *, entry_id: int) -> None:
        """Make the succeeded entry ``entry_id`` the current version of ``file_key``.

        The previous current version (if any) becomes ``superseded``, in the same transaction.
        """
        with self._sessions.begin() as session:
            entry = session.get(LedgerEntry, entry_id)
            if entry is None:
                raise KeyError(f"no ledger entry {entry_id}")
            if entry.outcome != "succeeded":
                raise ValueError(f"ledger entry {entry_id} is {entry.outcome}; only a succeeded ingest is a version")
            if entry.file_sha256 not in (None, sha256):
                raise ValueError(f"ledger entry {entry_id} ingested content {entry.file_sha256}, not {sha256}")
            session.execute(
                update(LedgerEntry)
                .where(
                    LedgerEntry.file_key == file_key,
                    LedgerEntry.outcome == "succeeded",
                    LedgerEntry.id != entry_id,
                )
                .values(outcome="superseded")
            )
            entry.file_key = file_key
            entry.file_sha256 = sha256
