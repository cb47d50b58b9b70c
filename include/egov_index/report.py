"""Plain-text report of what a run published: outputs, data quality, province ranking."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from egov_index.pipeline import QUARANTINE, RANKING, REPORTS_DIR, VALIDATION_RESULTS
from egov_index.schemas import CATEGORIES, CATEGORY_NAMES
from egov_index.store import MANIFEST_FILE, DataStore


def accounting_rows(store: DataStore) -> pd.DataFrame:
    """Accounting of every ingested batch (from its quarantine partition's manifest)."""
    rows = []
    for manifest in sorted((store.root / QUARANTINE).glob(f"*/*/{MANIFEST_FILE}")):
        acc = json.loads(manifest.read_text()).get("accounting", {})
        if acc:
            rows.append(acc)
    columns = ["dataset", "partition", "rows_pulled", "rows_snapshot", "rows_quarantined"]
    return pd.DataFrame(rows, columns=columns + ["warnings", "extra_columns"])[columns]


def quality_lines(store: DataStore) -> list[str]:
    lines = []
    acc = accounting_rows(store)
    if not acc.empty:
        lines.append(acc.to_string(index=False))
    if (store.root / VALIDATION_RESULTS).exists():
        results = store.read(VALIDATION_RESULTS).to_pandas()
        results["unexpected_count"] = results["unexpected_count"].astype("Int64")
        failed = results[~results["success"]]
        if failed.empty:
            lines.append("All expectations passed.")
        else:
            lines.append("Failed expectations (critical rows were quarantined; warnings published):")
            lines.append(
                failed[["dataset", "partition", "severity", "expectation", "column", "unexpected_count"]]
                .to_string(index=False)
            )
    if (store.root / QUARANTINE).exists():
        quarantine = store.read(QUARANTINE).to_pandas()
        if not quarantine.empty:
            top = quarantine.groupby(["dataset", "expectations"], observed=True).size()
            lines.append("Quarantined rows by reason:\n" + top.to_string())
    return lines


def data_docs_lines(data_root: Path) -> list[str]:
    index = data_root / "quality" / "data_docs" / "index.html"
    return [f"Great Expectations Data Docs (offline HTML): {index}"] if index.exists() else []


def province_table(store: DataStore, period: str) -> pd.DataFrame:
    ranking = store.read(RANKING, ds.field("period") == period).to_pandas()
    provinces = ranking[ranking["level"] == "province"].sort_values(["overall_rank", "unit_code"])
    columns = {"overall_rank": "rank", "unit_code": "code", "unit_name": "province"}
    columns |= {f"{c}_index": c for c in CATEGORIES}
    columns["overall_index"] = "overall"
    return provinces[list(columns)].rename(columns=columns)


def render_report(data_root: Path, period: str) -> str:
    store = DataStore(data_root)
    outputs = sorted(
        {
            "/".join(part for part in p.relative_to(data_root).parts[:-1] if "=" not in part)
            for p in data_root.rglob("data.parquet")
            if not p.relative_to(data_root).parts[0].startswith("_")
        }
    )
    legend = "  ".join(f"{c}={CATEGORY_NAMES[c]}" for c in CATEGORIES)
    table = province_table(store, period)
    parts = [
        "",
        f"== Outputs (Parquet, Hive-partitioned) under {data_root}",
        *(f"   {o}/" for o in outputs),
        "",
        "== Data quality (rows pulled = snapshot + quarantine)",
        *quality_lines(store),
        *data_docs_lines(data_root),
        "",
        f"== Province ranking {period} ({len(table)} provinces; indices in [0, 1], standard competition ranks)",
        legend,
        table.to_string(index=False),
        *(f"Ranking report (HTML, opens offline): {p}" for p in sorted((data_root / REPORTS_DIR).glob(f"period={period}/*.html"))),
    ]
    return "\n".join(parts)
