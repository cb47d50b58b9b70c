"""Canonical schemas of every dataset the pipeline pulls and publishes.

This module is the one place where a dataset's columns are named and typed:
the reference source server emits these field names, the pull stage maps every
source onto them, the Great Expectations suites check them, and the snapshot
store writes them with these explicit Arrow types (never pandas-inferred ones).

Names are English; the Vietnamese terms are in docs/glossary.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

# --- value sets ----------------------------------------------------------------
CHANNELS: tuple[str, ...] = ("online", "counter", "postal")
DOSSIER_STATUSES: tuple[str, ...] = ("received", "in_progress", "resolved", "returned")
SERVICE_LEVELS: tuple[str, ...] = ("full_online", "partial_online", "offline")
LEVELS: tuple[str, ...] = ("commune", "province")
CATEGORIES: tuple[str, ...] = ("c1", "c2", "c3", "c4", "c5", "c6")
CATEGORY_NAMES: dict[str, str] = {
    "c1": "ICT technical infrastructure",
    "c2": "ICT use inside agencies",
    "c3": "Web portal: information provision and support functions",
    "c4": "Online public services",
    "c5": "Policies, mechanisms and regulations for ICT",
    "c6": "ICT human resources",
}

_CODE = pa.dictionary(pa.int32(), pa.string())
_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Field:
    """One canonical column: its Arrow type, whether it may be null, and its meaning."""

    name: str
    type: pa.DataType
    nullable: bool
    description: str
    category: Literal["c1", "c2", "c3", "c4", "c5", "c6", "key"] = "key"


def _int(name: str, category: str, description: str) -> Field:
    return Field(name, pa.int64(), True, description, category)  # type: ignore[arg-type]


def _bool(name: str, category: str, description: str) -> Field:
    return Field(name, pa.bool_(), True, description, category)  # type: ignore[arg-type]


# --- commune reports (one per commune per quarter) --------------------------------
COMMUNE_REPORT_FIELDS: tuple[Field, ...] = (
    Field("report_id", pa.string(), False, "Report identifier: '<commune_code>-<period>'"),
    Field("period", _CODE, False, "Reporting quarter, e.g. '2026-Q3'"),
    Field("province_code", _CODE, False, "Province code (2 digits, current 34-province units)"),
    Field("commune_code", _CODE, False, "Commune/ward/special-zone code (5 digits)"),
    Field("commune_name", pa.string(), True, "Commune name as reported"),
    Field("submitted_at", _TS, False, "When the commune submitted (or last revised) the report"),
    # c1 infrastructure
    _int("officials_total", "c1", "Officials (cán bộ, công chức) working at the commune People's Committee"),
    _int("officials_with_computer", "c1", "Officials with a work computer"),
    _int("computers_total", "c1", "Work computers"),
    _int("computers_internet", "c1", "Work computers connected to the Internet"),
    _bool("has_lan", "c1", "The People's Committee has a local area network"),
    _bool("connected_state_network", "c1", "Connected to the specialised state data network"),
    _int("villages_total", "c1", "Villages / residential groups in the commune"),
    _int("villages_with_broadband", "c1", "Villages with fixed broadband"),
    _int("video_conference_endpoints", "c1", "Video-conference endpoints"),
    _bool("malware_monitoring", "c1", "Computers under central malware monitoring"),
    # c2 ICT use inside agencies
    _int("documents_outgoing", "c2", "Outgoing official documents in the quarter"),
    _int("documents_outgoing_signed", "c2", "Outgoing documents sent with a digital signature"),
    _int("documents_incoming", "c2", "Incoming official documents in the quarter"),
    _int("officials_using_document_system", "c2", "Officials using the document-management system"),
    _int("officials_with_email", "c2", "Officials with an official e-mail account"),
    _int("leaders_total", "c2", "Commune leaders (chairman, vice-chairmen)"),
    _int("leaders_with_signature_cert", "c2", "Leaders holding a digital-signature certificate"),
    _int("periodic_reports_total", "c2", "Periodic reports due in the quarter"),
    _int("periodic_reports_online", "c2", "Periodic reports filed through the reporting system"),
    # c3 web portal
    _bool("portal_has_commune_page", "c3", "The commune has its own page on the provincial portal"),
    _int("portal_info_items_required", "c3", "Information items the commune page must publish"),
    _int("portal_info_items_published", "c3", "Required information items actually published and current"),
    _bool("portal_qa_function", "c3", "The page offers a Q&A / feedback function"),
    _int("portal_articles_published", "c3", "News articles published on the page in the quarter"),
    # c5 policies
    _bool("has_it_plan", "c5", "An annual IT-application / digital-transformation plan is issued"),
    _bool("has_dt_steering_committee", "c5", "A digital-transformation steering committee exists"),
    _bool("has_it_budget", "c5", "A budget line for IT is allocated"),
    _bool("has_security_regulation", "c5", "An information-security regulation is issued"),
    # c6 human resources
    _int("it_staff_dedicated", "c6", "Officials dedicated to (or in charge of) IT"),
    _int("officials_trained_it", "c6", "Officials trained in IT / digital skills in the last 12 months"),
    _int("community_tech_teams", "c6", "Community digital-technology teams (one per village is the goal)"),
    _int("residents_adult", "c6", "Adult residents (denominator for VNeID)"),
    _int("residents_vneid_level2", "c6", "Residents with an activated level-2 VNeID account"),
)

# --- dossiers (one record per administrative dossier, latest version) -------------
DOSSIER_FIELDS: tuple[Field, ...] = (
    Field("dossier_id", pa.string(), False, "Dossier identifier in the public-service portal"),
    Field("procedure_code", _CODE, False, "Administrative procedure code (catalogue)"),
    Field("province_code", _CODE, False, "Province of the receiving commune"),
    Field("commune_code", _CODE, False, "Receiving commune code"),
    Field("channel", _CODE, False, "How it was submitted: online | counter | postal"),
    Field("status", _CODE, False, "received | in_progress | resolved | returned"),
    Field("received_at", _TS, False, "When the dossier was received"),
    Field("due_at", _TS, False, "Legal deadline for the result"),
    Field("resolved_at", _TS, True, "When the result was issued (null while open)"),
    Field("updated_at", _TS, False, "Last change of the record in the portal"),
    Field("fee_vnd", pa.int64(), False, "Fee charged, in VND (0 = free procedure)"),
    Field("paid_online", pa.bool_(), False, "The fee was paid online"),
    Field("digitised", pa.bool_(), False, "Dossier and result were digitised"),
)

# --- procedure catalogue --------------------------------------------------------------
PROCEDURE_FIELDS: tuple[Field, ...] = (
    Field("procedure_code", _CODE, False, "Administrative procedure code"),
    Field("procedure_name", pa.string(), False, "Procedure name (Vietnamese)"),
    Field("field", _CODE, False, "Policy field the procedure belongs to"),
    Field("service_level", _CODE, False, "full_online | partial_online | offline"),
    Field("updated_at", _TS, False, "Last change of the catalogue entry"),
)


# (part, whole) pairs of a commune report: the part can never exceed the whole. The GX suite
# expectations/commune_reports.json checks each pair (a test keeps the two in step); the reference
# server corrupts one of them for its `numerator_exceeds_denominator` defect.
REPORT_PART_OF_WHOLE: tuple[tuple[str, str], ...] = (
    ("officials_with_computer", "officials_total"),
    ("computers_internet", "computers_total"),
    ("villages_with_broadband", "villages_total"),
    ("documents_outgoing_signed", "documents_outgoing"),
    ("officials_using_document_system", "officials_total"),
    ("officials_with_email", "officials_total"),
    ("leaders_with_signature_cert", "leaders_total"),
    ("periodic_reports_online", "periodic_reports_total"),
    ("portal_info_items_published", "portal_info_items_required"),
    ("officials_trained_it", "officials_total"),
    ("residents_vneid_level2", "residents_adult"),
)


def plain_type(f: Field) -> pa.DataType:
    """The field's Arrow type with codes as plain text (a file for others; the snapshots dictionary-encode)."""
    return pa.string() if pa.types.is_dictionary(f.type) else f.type


def arrow_schema(fields: tuple[Field, ...]) -> pa.Schema:
    """The explicit Arrow schema of a dataset."""
    return pa.schema([pa.field(f.name, f.type, nullable=f.nullable) for f in fields])


def field_names(fields: tuple[Field, ...]) -> list[str]:
    return [f.name for f in fields]


COMMUNE_REPORT_SCHEMA = arrow_schema(COMMUNE_REPORT_FIELDS)
DOSSIER_SCHEMA = arrow_schema(DOSSIER_FIELDS)
# Types of the portal's bulk export columns (docs/sources.md): the dossier fields, codes as plain text.
DOSSIER_EXPORT_TYPES: dict[str, pa.DataType] = {f.name: plain_type(f) for f in DOSSIER_FIELDS}
PROCEDURE_SCHEMA = arrow_schema(PROCEDURE_FIELDS)

# Key columns identifying one record of each source dataset.
RECORD_KEYS: dict[str, str] = {
    "commune_reports": "report_id",
    "dossiers": "dossier_id",
    "procedures": "procedure_code",
}
SOURCE_FIELDS: dict[str, tuple[Field, ...]] = {
    "commune_reports": COMMUNE_REPORT_FIELDS,
    "dossiers": DOSSIER_FIELDS,
    "procedures": PROCEDURE_FIELDS,
}

# --- quarantine: rows that failed a row-level expectation, kept whole with reasons ----
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("dataset", _CODE, nullable=False),
        pa.field("partition", pa.string(), nullable=False),
        pa.field("record_key", pa.string(), nullable=True),
        pa.field("expectations", pa.string(), nullable=False),
        pa.field("columns", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("record_json", pa.string(), nullable=False),
    ]
)

# --- validation results: one row per expectation per validated batch -----------------------
VALIDATION_RESULT_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("partition", pa.string(), nullable=False),
        pa.field("expectation", pa.string(), nullable=False),
        pa.field("column", pa.string(), nullable=True),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("success", pa.bool_(), nullable=False),
        pa.field("element_count", pa.int64(), nullable=True),
        pa.field("unexpected_count", pa.int64(), nullable=True),
    ]
)


# --- published: indicator values (long form) and the ranking ---------------------------
INDICATOR_VALUE_SCHEMA = pa.schema(
    [
        pa.field("period", _CODE, nullable=False),
        pa.field("level", _CODE, nullable=False),
        pa.field("unit_code", _CODE, nullable=False),
        pa.field("parent_code", _CODE, nullable=True),
        pa.field("methodology", _CODE, nullable=False),
        pa.field("category", _CODE, nullable=False),
        pa.field("indicator_id", _CODE, nullable=False),
        pa.field("numerator", pa.float64(), nullable=True),
        pa.field("denominator", pa.float64(), nullable=True),
        pa.field("value", pa.float64(), nullable=True),
        pa.field("points", pa.float64(), nullable=False),
        pa.field("max_points", pa.float64(), nullable=False),
        pa.field("missing_treatment", _CODE, nullable=True),
    ]
)


def ranking_schema() -> pa.Schema:
    """The public ranking contract (version 2, path ``ranking_v2``): one row per period x level x unit.

    Version 2 made the points, indices and ranks nullable (a commune excluded for a missing report has
    none) and added the report treatment, ranks within the province per category and the rank changes.
    """
    fields = [
        pa.field("period", _CODE, nullable=False),
        pa.field("level", _CODE, nullable=False),
        pa.field("unit_code", _CODE, nullable=False),
        pa.field("unit_name", pa.string(), nullable=False),
        pa.field("parent_code", _CODE, nullable=True),
        pa.field("methodology", _CODE, nullable=False),
        pa.field("report_treatment", _CODE, nullable=False),
        pa.field("carried_from_period", _CODE, nullable=True),
        pa.field("reported_share", pa.float64(), nullable=False),
        pa.field("overall_points", pa.float64(), nullable=True),
        pa.field("overall_max_points", pa.float64(), nullable=False),
        pa.field("overall_index", pa.float64(), nullable=True),
        pa.field("overall_rank", pa.int32(), nullable=True),
        pa.field("overall_rank_in_province", pa.int32(), nullable=True),
    ]
    for c in CATEGORIES:
        fields.append(pa.field(f"{c}_index", pa.float64(), nullable=True))
        fields.append(pa.field(f"{c}_rank", pa.int32(), nullable=True))
        fields.append(pa.field(f"{c}_rank_in_province", pa.int32(), nullable=True))
    for baseline in RANK_BASELINES:
        fields.append(pa.field(f"{baseline}_period", _CODE, nullable=True))
        fields.append(pa.field(f"{baseline}_basis", _CODE, nullable=True))
        fields.append(pa.field(f"{baseline}_rank", pa.int32(), nullable=True))
        fields.append(pa.field(f"{baseline}_rank_change", pa.int32(), nullable=True))
    fields.append(pa.field("has_report", pa.bool_(), nullable=False))
    return pa.schema(fields)


# The two comparisons of every ranking row: the period before, and the same period a year earlier.
# ``<baseline>_rank_change`` = baseline rank - current rank (positive = moved up).
RANK_BASELINES: tuple[str, ...] = ("previous", "year_ago")
# ``report_treatment`` values: commune = reported | zero_points | carried_forward | excluded;
# province = reported (every commune reported) | partial | none
REPORT_TREATMENTS: tuple[str, ...] = (
    "reported",
    "zero_points",
    "carried_forward",
    "excluded",
    "partial",
    "none",
)
# ``<baseline>_basis`` values: our own ranking of that period, a published table on current units, or a
# published table on pre-2025 units crosswalked to current ones (mean of the predecessors' indices)
BASELINE_BASES: tuple[str, ...] = ("computed", "published", "published_crosswalk")

# --- rank uncertainty: Monte Carlo over weights and normalisations ------------------------------
RANK_UNCERTAINTY_SCHEMA = pa.schema(
    [
        pa.field("period", _CODE, nullable=False),
        pa.field("level", _CODE, nullable=False),
        pa.field("unit_code", _CODE, nullable=False),
        pa.field("methodology", _CODE, nullable=False),
        pa.field("draws", pa.int32(), nullable=False),
        pa.field("overall_rank", pa.int32(), nullable=True),
        pa.field("median_rank", pa.float64(), nullable=True),
        pa.field("rank_p05", pa.int32(), nullable=True),
        pa.field("rank_p95", pa.int32(), nullable=True),
        pa.field("band_width", pa.int32(), nullable=True),
        pa.field("wide_band", pa.bool_(), nullable=False),
    ]
)

# --- explanations: points lost per indicator and what would move the unit up ----------------------
EXPLANATION_SCHEMA = pa.schema(
    [
        pa.field("period", _CODE, nullable=False),
        pa.field("level", _CODE, nullable=False),
        pa.field("unit_code", _CODE, nullable=False),
        pa.field("methodology", _CODE, nullable=False),
        pa.field("category", _CODE, nullable=False),
        pa.field("indicator_id", _CODE, nullable=False),
        pa.field("value", pa.float64(), nullable=True),
        pa.field("points", pa.float64(), nullable=False),
        pa.field("max_points", pa.float64(), nullable=False),
        pa.field("points_lost", pa.float64(), nullable=False),
        pa.field("loss_order", pa.int32(), nullable=False),
        pa.field("points_needed", pa.float64(), nullable=True),
        pa.field("target_value", pa.float64(), nullable=True),
        pa.field("rank_if_improved", pa.int32(), nullable=True),
        pa.field("best_move_up", pa.bool_(), nullable=False),
    ]
)

# --- published rankings: the ministry's tables as printed, imported as baselines ---------------------
PUBLISHED_RANKING_SCHEMA = pa.schema(
    [
        pa.field("year", _CODE, nullable=False),
        pa.field("unit_set", _CODE, nullable=False),  # legacy (63 provinces) | current (34)
        pa.field("province_code", _CODE, nullable=False),
        pa.field("province_name", pa.string(), nullable=False),  # registry name
        pa.field("name_as_printed", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("precision", pa.int32(), nullable=False),
        pa.field("overall_index", pa.float64(), nullable=False),
        pa.field("overall_rank_printed", pa.int32(), nullable=True),
        pa.field("overall_rank", pa.int32(), nullable=False),  # recomputed from the indices
        *(
            field
            for c in CATEGORIES
            for field in (
                pa.field(f"{c}_index", pa.float64(), nullable=True),
                pa.field(f"{c}_rank_printed", pa.int32(), nullable=True),
                pa.field(f"{c}_rank", pa.int32(), nullable=True),
            )
        ),
    ]
)


RANKING_SCHEMA = ranking_schema()
