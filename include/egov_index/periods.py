"""Reporting periods and the local-day windows of the nightly run.

A period is a quarter, written ``2026-Q3``, or a year, written ``2026``.
Vietnam's civil day is Asia/Ho_Chi_Minh (UTC+7, no DST).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True)
class Period:
    label: str
    start: date  # first day, inclusive
    end: date  # last day, inclusive

    @property
    def is_quarter(self) -> bool:
        return "-Q" in self.label


def parse_period(label: str) -> Period:
    """Parse '2026-Q3' or '2026'; raise ValueError with the expected form otherwise."""
    if m := _QUARTER.match(label):
        year, q = int(m.group(1)), int(m.group(2))
        start = date(year, 3 * q - 2, 1)
        end = (date(year + (q == 4), (3 * q) % 12 + 1, 1)) - timedelta(days=1)
        return Period(label, start, end)
    if m := _YEAR.match(label):
        year = int(m.group(1))
        return Period(label, date(year, 1, 1), date(year, 12, 31))
    raise ValueError(f"period {label!r} is not a quarter like '2026-Q3' or a year like '2026'")


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarters_of(period: Period) -> list[str]:
    """The quarter labels a period covers (itself for a quarter, four for a year)."""
    if period.is_quarter:
        return [period.label]
    return [f"{period.start.year}-Q{q}" for q in range(1, 5)]


def previous_period(label: str) -> str:
    """The period before: 2026-Q1 -> 2025-Q4, 2026 -> 2025."""
    period = parse_period(label)
    if not period.is_quarter:
        return str(period.start.year - 1)
    quarter = (period.start.month - 1) // 3 + 1
    return f"{period.start.year - 1}-Q4" if quarter == 1 else f"{period.start.year}-Q{quarter - 1}"


def year_ago_period(label: str) -> str:
    """The same period a year earlier: 2026-Q3 -> 2025-Q3, 2026 -> 2025."""
    period = parse_period(label)
    year = period.start.year - 1
    return f"{year}-Q{(period.start.month - 1) // 3 + 1}" if period.is_quarter else str(year)


@dataclass(frozen=True)
class DayWindow:
    """One local civil day as a half-open UTC-aware interval [start, end)."""

    day: date
    start: datetime
    end: datetime


def local_day_window(day: date) -> DayWindow:
    start = datetime.combine(day, time(0), tzinfo=LOCAL_TZ)
    return DayWindow(day=day, start=start, end=start + timedelta(days=1))
