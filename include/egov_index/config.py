"""Runtime settings, read from the environment (one place; documented in README "Configuration")."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Airflow Connection ids of the two sources (type http; host/port/schema; password = bearer token).
REPORTING_API_CONN_ID = "egov_reporting_api"
SERVICE_PORTAL_CONN_ID = "egov_service_portal"


@dataclass(frozen=True)
class Settings:
    data_root: Path
    expectations_dir: Path
    methodology: str
    max_quarantine_share: float
    report_page_size: int
    dossier_page_limit: int
    inbox_dir: Path
    sql_url: str
    retention_daily_partitions: int
    retention_raw_days: int
    retention_export_days: int

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        data_root = local_data_root(str(env.get("EGOV_DATA_ROOT", PROJECT_ROOT / "data")))
        return cls(
            data_root=data_root,
            expectations_dir=Path(env.get("EGOV_EXPECTATIONS_DIR", PROJECT_ROOT / "expectations")).resolve(),
            methodology=env.get("EGOV_METHODOLOGY", "mic-six-category"),
            max_quarantine_share=float(env.get("EGOV_MAX_QUARANTINE_SHARE", "0.05")),
            report_page_size=int(env.get("EGOV_REPORT_PAGE_SIZE", "500")),
            dossier_page_limit=int(env.get("EGOV_DOSSIER_PAGE_LIMIT", "1000")),
            inbox_dir=Path(env.get("EGOV_INBOX_DIR", PROJECT_ROOT / "inbox")).resolve(),
            # ingest ledger, validation history and the SQL copy of the results (SQLAlchemy URL)
            sql_url=env.get("EGOV_SQL_URL", f"sqlite:///{data_root / 'egov-index.sqlite'}"),
            retention_daily_partitions=int(env.get("EGOV_RETENTION_DAILY_PARTITIONS", "35")),
            retention_raw_days=int(env.get("EGOV_RETENTION_RAW_DAYS", "35")),
            retention_export_days=int(env.get("EGOV_RETENTION_EXPORT_DAYS", "35")),
        )


def local_data_root(value: str) -> Path:
    """The pipeline's data root: a local (or mounted shared) folder. A URL is refused with what to do
    rather than taken for a relative folder named ``s3:``."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
        raise ValueError(
            f"EGOV_DATA_ROOT={value!r}: the pipeline needs a local or mounted folder (the raw archive, bulk "
            "export files, reports and Data Docs are local files); only the snapshot store itself reads and "
            "writes URLs (DataStore('s3://...')). Mount the bucket or use shared storage (NFS) and point "
            "EGOV_DATA_ROOT at the mount."
        )
    return Path(value).expanduser().resolve()
