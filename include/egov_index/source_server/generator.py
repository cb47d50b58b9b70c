"""Deterministic synthetic source data: commune reports, dossiers, procedure catalogue.

Every value is a pure function of the seed and an entity key. Random streams come from
``numpy`` generators seeded with a BLAKE2b hash of ``(seed, stream, key...)``:

* ``("province", province_code)``: the province's latent digital maturity;
* ``("commune", commune_code)``: the commune's deviation and its sizes (officials,
  villages, adult residents), stable across periods;
* ``("report", commune_code, period)``: one quarterly report;
* ``("dossier-counts", day)``, ``("dossiers", day)`` and ``("correction-days", day)``: the
  dossiers received on one local (Asia/Ho_Chi_Minh) day, with every version of each;
* ``("legacy", period)``: which reports identify their commune the pre-2025 way;
* ``("catalogue",)``: the procedure catalogue.

Maturity lives on a logit scale: province latent + commune deviation (+ a bonus for
wards) + a gentle trend per quarter since 2025-Q3, squashed by a sigmoid into [0, 1].
Indicator shares grow with maturity so the ranking has structure, not uniform noise.

Defects (``defect_rate`` = share of records corrupted, chosen by a per-record uniform
that is drawn whatever the rate, so the same records are defective on every call and
raising the rate only adds defects) are listed in ``REPORT_DEFECTS`` and
``DOSSIER_DEFECTS``.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import holidays
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from egov_index.periods import LOCAL_TZ, parse_period, quarter_of
from egov_index.registry import current_units
from egov_index.schemas import (
    CHANNELS,
    COMMUNE_REPORT_FIELDS,
    DOSSIER_EXPORT_TYPES,
    DOSSIER_FIELDS,
    DOSSIER_STATUSES,
    PROCEDURE_FIELDS,
    REPORT_PART_OF_WHOLE,
    SERVICE_LEVELS,
    field_names,
)
from egov_index.source_server.legacy import legacy_units_by_commune, strip_diacritics

Record = dict[str, Any]
DossierKey = tuple[int, str]
"""Sort key of a dossier: (updated_at as Unix seconds, dossier_id)."""

DEFAULT_SEED = 2026
DEFAULT_DOSSIERS_PER_DAY = 20_000
PORTAL_INFO_ITEMS_REQUIRED = 12
MAX_RECEIVED_LAG_DAYS = 20

# How a legacy-identified report names its commune -> share of those reports.
LEGACY_IDENTIFICATIONS: dict[str, float] = {
    "legacy_code": 0.5,  # legacy commune code, its legacy province code and name; report_id from them
    "names": 0.25,  # no codes, no report_id: legacy commune, district and province names
    "names_ascii": 0.25,  # the same names without diacritics (with them if they would be ambiguous)
}
REPORT_DEFECTS: tuple[str, ...] = (
    "numerator_exceeds_denominator",  # e.g. officials_with_computer > officials_total
    "negative_count",  # one count field negative
    "unknown_commune",  # commune_code '9xxxx', not in the registry
)
DOSSIER_DEFECTS: tuple[str, ...] = (
    "resolved_before_received",  # status resolved, resolved_at < received_at
    "unknown_channel",  # channel 'fax'
    "unknown_procedure",  # procedure_code '9.xxxxxx', not in the catalogue
    "negative_fee",  # fee_vnd < 0
)

_REPORT_COUNTS = tuple(f.name for f in COMMUNE_REPORT_FIELDS if f.category != "key" and f.type == pa.int64())

# Maturity model (logit scale), calibrated so that in 2026 the best communes reach the
# seed figures (100 % computers, ~95 % online, ~78 % VNeID) and weak ones are clearly lower.
_PROVINCE_MEAN = 0.3
_PROVINCE_SD = 0.7
_COMMUNE_SD = 0.55
_WARD_BONUS = 0.5
_TREND_PER_QUARTER = 0.12
_BASE_YEAR, _BASE_QUARTER = 2025, 3

_WEEKDAY_FACTOR = (1.0, 1.0, 1.0, 1.0, 1.0, 0.12, 0.04)  # Monday .. Sunday
_HOLIDAY_FACTOR = 0.04  # a public holiday (Tết, 30/4, 1/5, 2/9, ...) is as quiet as a Sunday
# Seasonality by month (mean 1 over the year): the rush before Tết in January, the Tết lull in February,
# a quiet summer, a busy end of the year (land, business and social-support dossiers before 31/12).
_MONTH_FACTOR = (1.12, 0.78, 1.02, 0.98, 0.96, 0.98, 0.94, 0.95, 1.0, 1.04, 1.08, 1.15)
# Received dossiers per working day of an average month that make a national year of about 10 million
# dossiers (a working day then brings about 40,000): `--dossiers-per-day` of the national profile.
NATIONAL_DOSSIERS_PER_DAY = 38_700
_UTC_OFFSET_S, _OFFSET_SUFFIX = 7 * 3600, "+07:00"  # LOCAL_TZ: UTC+7, no DST since 1975
_DAY_S = 86_400
_NULL_TS = np.iinfo(np.int64).min
_FEES = np.array([10_000, 20_000, 30_000, 50_000, 100_000, 200_000, 500_000], dtype=np.int64)


# --- random streams -------------------------------------------------------------------
def _rng(seed: int, *key: object) -> np.random.Generator:
    """A generator seeded by a stable hash of (seed, key...), independent of call order."""
    text = "|".join(str(part) for part in (seed, *key))
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


class _Draws:
    """Rows of uniforms, handed out one per use in a fixed order."""

    def __init__(self, uniforms: np.ndarray) -> None:
        self._rows: Iterator[np.ndarray] = iter(uniforms)

    def __call__(self) -> np.ndarray:
        return next(self._rows)


def _share(base: np.ndarray, spread: float, u: np.ndarray) -> np.ndarray:
    return np.clip(base + spread * (2.0 * u - 1.0), 0.0, 1.0)


def _portion(total: np.ndarray, share: np.ndarray, u: np.ndarray) -> np.ndarray:
    """round(total * share) with random rounding, never above total."""
    return np.minimum(total, np.floor(total * share + u).astype(np.int64))


def _iso(epochs: np.ndarray) -> list[str]:
    """Unix seconds -> ISO-8601 local time with offset, e.g. '2026-09-30T08:15:00+07:00'."""
    local = (epochs + _UTC_OFFSET_S).astype("datetime64[s]")
    return [text + _OFFSET_SUFFIX for text in np.datetime_as_string(local).tolist()]


def _local_epoch(day: date) -> int:
    return int(datetime.combine(day, time(0), tzinfo=LOCAL_TZ).timestamp())


def _office_hours(epochs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The same local days, at a time within office hours (07:30-17:00) given by u in [0, 1)."""
    midnight = epochs - (epochs + _UTC_OFFSET_S) % _DAY_S
    return midnight + np.floor(7.5 * 3600 + 9.5 * 3600 * u).astype(np.int64)


def _rows(names: list[str], columns: dict[str, list[Any]]) -> list[Record]:
    values = [columns[name] for name in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


# --- units and maturity ---------------------------------------------------------------
@dataclass(frozen=True)
class _Communes:
    codes: np.ndarray
    names: list[str]
    province_codes: np.ndarray
    is_ward: np.ndarray
    latent: np.ndarray
    officials: np.ndarray
    leaders: np.ndarray
    villages: np.ndarray
    residents: np.ndarray
    dossier_share: np.ndarray


@lru_cache(maxsize=8)
def _communes(seed: int) -> _Communes:
    registry = current_units()
    frame = registry.communes
    province_latent = {
        code: _rng(seed, "province", code).normal(_PROVINCE_MEAN, _PROVINCE_SD)
        for code in registry.province_codes()
    }
    codes = frame["commune_code"].to_numpy(dtype=str)
    provinces = frame["province_code"].to_numpy(dtype=str)
    is_ward = (frame["commune_type"] == "Phường").to_numpy()
    normals = np.empty(len(codes))
    u = np.empty((4, len(codes)))
    for i, code in enumerate(codes):
        g = _rng(seed, "commune", code)
        normals[i] = g.standard_normal()
        u[:, i] = g.random(4)
    latent = np.array([province_latent[p] for p in provinces]) + _COMMUNE_SD * normals + _WARD_BONUS * is_ward
    officials = np.minimum(40, 15 + np.floor(21 * u[0]).astype(np.int64) + 4 * is_ward)
    leaders = 2 + np.floor(3 * u[1]).astype(np.int64)
    villages = 3 + np.floor(28 * u[2] ** 1.4).astype(np.int64)
    low, high = np.where(is_ward, 6_000.0, 2_000.0), np.where(is_ward, 40_000.0, 20_000.0)
    residents = np.round(low * (high / low) ** u[3]).astype(np.int64)
    weight = residents**0.8 * np.where(is_ward, 1.6, 1.0)
    return _Communes(
        codes=codes,
        names=frame["commune_name"].astype(str).tolist(),
        province_codes=provinces,
        is_ward=is_ward,
        latent=latent,
        officials=officials,
        leaders=leaders,
        villages=villages,
        residents=residents,
        dossier_share=weight / weight.sum(),
    )


@lru_cache(maxsize=64)
def _maturity(seed: int, quarter: str) -> np.ndarray:
    """Digital maturity in [0, 1] of every commune (registry order) in a quarter."""
    index = (int(quarter[:4]) - _BASE_YEAR) * 4 + int(quarter[-1]) - _BASE_QUARTER
    return 1.0 / (1.0 + np.exp(-(_communes(seed).latent + _TREND_PER_QUARTER * index)))


def prepare(seed: int) -> None:
    """Load the registry and build the per-seed tables (so the first request is fast)."""
    _communes(seed)
    _catalogue(seed)


# --- procedure catalogue ----------------------------------------------------------------
# (field, processing-day options, popularity weight, base names, name variants)
_PROCEDURE_FIELDS: tuple[tuple[str, tuple[int, ...], float, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "Hộ tịch",
        (1, 3, 5),
        5.0,
        (
            "Đăng ký khai sinh",
            "Đăng ký kết hôn",
            "Đăng ký khai tử",
            "Đăng ký nhận cha, mẹ, con",
            "Đăng ký giám hộ",
            "Đăng ký chấm dứt giám hộ",
            "Đăng ký thay đổi, cải chính, bổ sung thông tin hộ tịch",
            "Cấp bản sao trích lục hộ tịch",
            "Cấp giấy xác nhận tình trạng hôn nhân",
            "Đăng ký lại khai sinh",
            "Đăng ký lại kết hôn",
            "Đăng ký lại khai tử",
            "Ghi vào sổ hộ tịch việc hộ tịch đã giải quyết ở nước ngoài",
        ),
        ("", " có yếu tố nước ngoài", " lưu động", " (liên thông điện tử)"),
    ),
    (
        "Chứng thực",
        (1, 2),
        6.0,
        (
            "Chứng thực bản sao từ bản chính",
            "Chứng thực chữ ký trong giấy tờ, văn bản",
            "Chứng thực chữ ký người dịch",
            "Chứng thực hợp đồng, giao dịch liên quan đến động sản",
            "Chứng thực hợp đồng, giao dịch liên quan đến quyền sử dụng đất",
            "Chứng thực di chúc",
            "Chứng thực văn bản từ chối nhận di sản",
            "Chứng thực văn bản thỏa thuận phân chia di sản",
            "Chứng thực văn bản khai nhận di sản",
            "Chứng thực việc sửa đổi, bổ sung, hủy bỏ hợp đồng, giao dịch",
            "Sửa lỗi sai sót trong hợp đồng, giao dịch đã được chứng thực",
            "Cấp bản sao có chứng thực từ bản chính hợp đồng, giao dịch đã được chứng thực",
        ),
        ("", " (người yêu cầu là người nước ngoài)", " ngoài trụ sở"),
    ),
    (
        "Đất đai",
        (10, 15),
        2.0,
        (
            "Hòa giải tranh chấp đất đai",
            "Xác nhận nguồn gốc sử dụng đất",
            "Đăng ký biến động quyền sử dụng đất",
            "Xác nhận hiện trạng sử dụng đất",
            "Tiếp nhận hồ sơ cấp giấy chứng nhận quyền sử dụng đất lần đầu",
            "Xác nhận hợp đồng chuyển nhượng quyền sử dụng đất",
            "Đăng ký đất đai lần đầu",
            "Gia hạn sử dụng đất nông nghiệp",
            "Chuyển mục đích sử dụng đất",
            "Xác nhận tiếp tục sử dụng đất nông nghiệp",
        ),
        ("", " của hộ gia đình, cá nhân", " (liên thông)"),
    ),
    (
        "Xây dựng",
        (7, 10, 15),
        1.0,
        (
            "Cấp giấy phép xây dựng nhà ở riêng lẻ",
            "Cấp giấy phép sửa chữa, cải tạo công trình",
            "Điều chỉnh giấy phép xây dựng",
            "Gia hạn giấy phép xây dựng",
            "Cấp lại giấy phép xây dựng",
            "Cấp giấy phép di dời công trình",
            "Cấp giấy phép xây dựng có thời hạn",
        ),
        ("", " tại đô thị", " tại nông thôn"),
    ),
    (
        "Hộ kinh doanh, hợp tác xã",
        (3, 5),
        1.5,
        (
            "Đăng ký thành lập hộ kinh doanh",
            "Đăng ký thay đổi nội dung đăng ký hộ kinh doanh",
            "Tạm ngừng kinh doanh của hộ kinh doanh",
            "Chấm dứt hoạt động hộ kinh doanh",
            "Cấp lại giấy chứng nhận đăng ký hộ kinh doanh",
            "Đăng ký thành lập hợp tác xã",
            "Đăng ký thay đổi tên, địa chỉ hợp tác xã",
        ),
        ("", " (qua mạng điện tử)"),
    ),
    (
        "Bảo trợ xã hội",
        (7, 10),
        1.5,
        (
            "Trợ cấp xã hội hằng tháng đối với đối tượng bảo trợ xã hội",
            "Điều chỉnh, thôi hưởng trợ cấp xã hội hằng tháng",
            "Hỗ trợ chi phí mai táng",
            "Xác định, xác định lại mức độ khuyết tật",
            "Cấp đổi, cấp lại giấy xác nhận khuyết tật",
            "Trợ giúp xã hội khẩn cấp về hỗ trợ làm nhà ở",
            "Hỗ trợ kinh phí nhận chăm sóc đối tượng cần bảo vệ khẩn cấp",
            "Công nhận hộ nghèo, hộ cận nghèo phát sinh trong năm",
            "Công nhận hộ thoát nghèo, thoát cận nghèo",
        ),
        ("", " (thực hiện tại cấp xã)"),
    ),
    (
        "Người có công",
        (5, 7, 10),
        0.8,
        (
            "Giải quyết chế độ trợ cấp một lần đối với thân nhân liệt sĩ",
            "Cấp giấy xác nhận thân nhân người có công",
            "Hưởng trợ cấp khi người có công đang hưởng trợ cấp ưu đãi từ trần",
            "Hỗ trợ người có công với cách mạng cải thiện nhà ở",
            "Di chuyển hồ sơ người có công",
            "Thăm viếng mộ liệt sĩ",
            "Giải quyết chế độ ưu đãi đối với con đẻ người hoạt động kháng chiến bị nhiễm chất độc hóa học",
        ),
        ("", " (liên thông)"),
    ),
    (
        "Giáo dục và Đào tạo",
        (5, 10),
        0.6,
        (
            "Cho phép trường mẫu giáo hoạt động giáo dục",
            "Thành lập nhóm trẻ, lớp mẫu giáo độc lập",
            "Sáp nhập, chia, tách trường mẫu giáo",
            "Cho phép nhóm trẻ, lớp mẫu giáo độc lập hoạt động trở lại",
            "Giải thể nhóm trẻ, lớp mẫu giáo độc lập",
            "Xét, duyệt chính sách hỗ trợ học sinh bán trú",
            "Chuyển trường đối với học sinh tiểu học",
            "Xác nhận hoàn thành chương trình xóa mù chữ",
        ),
        ("", " tư thục", " dân lập"),
    ),
    (
        "Văn hóa",
        (5, 7),
        0.4,
        (
            "Công nhận gia đình văn hóa",
            "Công nhận thôn, tổ dân phố văn hóa",
            "Đăng ký tổ chức lễ hội",
            "Thông báo tổ chức lễ hội",
            "Xét tặng danh hiệu khu dân cư văn hóa",
            "Đăng ký hoạt động thư viện tư nhân",
            "Cấp phép tổ chức biểu diễn nghệ thuật",
        ),
        ("", " hằng năm"),
    ),
    (
        "Nông nghiệp",
        (5, 10),
        0.5,
        (
            "Hỗ trợ khôi phục sản xuất vùng bị thiệt hại do thiên tai",
            "Hỗ trợ khôi phục sản xuất vùng bị thiệt hại do dịch bệnh",
            "Xác nhận nguồn gốc thủy sản khai thác",
            "Phê duyệt kế hoạch khuyến nông địa phương",
            "Hỗ trợ dự án liên kết sản xuất",
            "Xác nhận bảng kê lâm sản",
            "Đăng ký kê khai số lượng chăn nuôi",
        ),
        ("", " cấp xã"),
    ),
    (
        "Môi trường",
        (5, 10),
        0.4,
        (
            "Đăng ký môi trường",
            "Tham vấn báo cáo đánh giá tác động môi trường",
            "Xác nhận kế hoạch bảo vệ môi trường",
            "Đăng ký khai thác nước dưới đất",
            "Xác nhận hoàn thành công trình bảo vệ môi trường",
            "Tiếp nhận phản ánh về ô nhiễm môi trường",
        ),
        ("", " đối với hộ gia đình, cá nhân", " đối với cơ sở sản xuất, kinh doanh"),
    ),
    (
        "Tín ngưỡng, tôn giáo",
        (7, 15),
        0.2,
        (
            "Đăng ký hoạt động tín ngưỡng",
            "Đăng ký bổ sung hoạt động tín ngưỡng",
            "Thông báo danh mục hoạt động tôn giáo",
            "Đề nghị sinh hoạt tôn giáo tập trung",
            "Thông báo tổ chức quyên góp",
            "Đăng ký người đại diện nhóm sinh hoạt tôn giáo tập trung",
        ),
        ("", " trên địa bàn một xã"),
    ),
    (
        "Thi đua, khen thưởng",
        (10, 15),
        0.3,
        (
            "Tặng giấy khen của Chủ tịch Ủy ban nhân dân cấp xã",
            "Tặng giấy khen về thành tích thi đua theo đợt, chuyên đề",
            "Tặng danh hiệu Lao động tiên tiến",
            "Tặng giấy khen cho gia đình",
            "Tặng giấy khen về thành tích đột xuất",
        ),
        ("", " (khen thưởng đối ngoại)"),
    ),
    (
        "Nuôi con nuôi",
        (10, 15),
        0.1,
        (
            "Đăng ký việc nuôi con nuôi trong nước",
            "Đăng ký lại việc nuôi con nuôi trong nước",
            "Giải quyết việc người nước ngoài thường trú ở Việt Nam nhận con nuôi",
        ),
        ("", " (cha dượng, mẹ kế nhận con riêng)"),
    ),
    (
        "Phổ biến, giáo dục pháp luật",
        (5, 7),
        0.2,
        (
            "Công nhận tuyên truyền viên pháp luật",
            "Thôi làm tuyên truyền viên pháp luật",
            "Công nhận hòa giải viên",
            "Thôi làm hòa giải viên",
            "Thanh toán thù lao cho hòa giải viên",
            "Bầu tổ trưởng tổ hòa giải",
            "Công nhận cấp xã đạt chuẩn tiếp cận pháp luật",
        ),
        ("",),
    ),
    (
        "Lao động, việc làm",
        (3, 5),
        0.5,
        (
            "Xác nhận người lao động tự do",
            "Hỗ trợ người lao động mất việc làm",
            "Đăng ký hợp đồng lao động cho người giúp việc gia đình",
            "Xác nhận hộ gia đình làm nông nghiệp có mức sống trung bình",
            "Xác nhận đối tượng vay vốn giải quyết việc làm",
        ),
        ("", " tại nơi cư trú"),
    ),
)


@dataclass(frozen=True)
class _Catalogue:
    codes: np.ndarray  # sorted
    names: list[str]
    fields: list[str]
    levels: np.ndarray  # index into SERVICE_LEVELS
    processing_days: np.ndarray
    fees: np.ndarray
    popularity: np.ndarray  # sums to 1
    updated_at: list[str]


@lru_cache(maxsize=8)
def _catalogue(seed: int) -> _Catalogue:
    g = _rng(seed, "catalogue")
    entries = [
        (field, days, weight, base + variant)
        for field, days, weight, bases, variants in _PROCEDURE_FIELDS
        for base in bases
        for variant in variants
    ]
    n = len(entries)
    numbers = g.choice(np.arange(100, 10_000), size=n, replace=False)
    prefixes = g.integers(1, 3, size=n)
    codes = np.array([f"{p}.{num:06d}" for p, num in zip(prefixes, numbers, strict=True)])
    # Exact shares: 50 % full_online, 30 % partial_online, the rest offline; 60 % free.
    levels = np.full(n, 2)
    order = g.permutation(n)
    levels[order[: round(0.5 * n)]] = 0
    levels[order[round(0.5 * n) : round(0.8 * n)]] = 1
    fees = g.choice(_FEES, size=n)
    fees[g.permutation(n)[: round(0.6 * n)]] = 0
    days = np.array([g.choice(options) for _, options, _, _ in entries], dtype=np.int64)
    popularity = np.array([weight for _, _, weight, _ in entries]) * np.exp(1.2 * g.standard_normal(n))
    updated = (
        _local_epoch(date(2025, 7, 1))
        + g.integers(0, 180, size=n) * _DAY_S
        + g.integers(7 * 3600, 17 * 3600, size=n)
    )
    sort = np.argsort(codes, kind="stable")
    return _Catalogue(
        codes=codes[sort],
        names=[entries[i][3] for i in sort],
        fields=[entries[i][0] for i in sort],
        levels=levels[sort],
        processing_days=days[sort],
        fees=fees[sort],
        popularity=popularity[sort] / popularity.sum(),
        updated_at=_iso(updated[sort]),
    )


def procedure_catalogue(seed: int = DEFAULT_SEED) -> list[Record]:
    """The administrative-procedure catalogue (~300 entries), ordered by procedure_code."""
    cat = _catalogue(seed)
    columns = {
        "procedure_code": cat.codes.tolist(),
        "procedure_name": cat.names,
        "field": cat.fields,
        "service_level": [SERVICE_LEVELS[i] for i in cat.levels],
        "updated_at": cat.updated_at,
    }
    return _rows(field_names(PROCEDURE_FIELDS), columns)


# --- commune reports --------------------------------------------------------------------
_REPORT_DRAWS = 48


def commune_reports(
    period: str, seed: int = DEFAULT_SEED, defect_rate: float = 0.0, legacy_rate: float = 0.0
) -> list[Record]:
    """One quarterly report per commune, in registry order (province_code, commune_code).

    A share ``legacy_rate`` of the clean reports identifies its commune the pre-2025 way
    (``LEGACY_IDENTIFICATIONS``), see ``_identify_legacy``.
    """
    quarter = parse_period(period)
    if not quarter.is_quarter:
        raise ValueError(f"commune reports are quarterly: expected a period like '2026-Q3', got {period!r}")
    c = _communes(seed)
    m = _maturity(seed, period)
    u = np.stack([_rng(seed, "report", code, period).random(_REPORT_DRAWS) for code in c.codes], axis=1)
    draw = _Draws(u)
    defective, defect_kind, defect_pick = draw() < defect_rate, draw(), draw()

    officials, villages, leaders = c.officials, c.villages, c.leaders
    with_computer = _portion(officials, _share(0.55 + 0.5 * m, 0.08, draw()), draw())
    computers = with_computer + np.floor(4 * draw()).astype(np.int64)
    outgoing = np.round(officials * (6 + 14 * draw())).astype(np.int64)
    periodic = 8 + np.floor(13 * draw()).astype(np.int64)
    has_page = draw() < 0.55 + 0.45 * m
    required = np.full(len(m), PORTAL_INFO_ITEMS_REQUIRED, dtype=np.int64)
    last_month = date(quarter.end.year, quarter.end.month, 15)
    submitted = (
        _local_epoch(last_month)
        + np.floor(11 * draw()).astype(np.int64) * _DAY_S
        + np.floor(7.5 * 3600 + 9.5 * 3600 * draw()).astype(np.int64)
    )
    values: dict[str, np.ndarray] = {
        "officials_total": officials,
        "officials_with_computer": with_computer,
        "computers_total": computers,
        "computers_internet": _portion(computers, _share(0.5 + 0.47 * m, 0.04, draw()), draw()),
        "has_lan": draw() < 0.45 + 0.55 * m,
        "connected_state_network": draw() < 0.25 + 0.75 * m,
        "villages_total": villages,
        "villages_with_broadband": _portion(
            villages, _share(0.25 + 0.5 * m + 0.15 * c.is_ward, 0.08, draw()), draw()
        ),
        "video_conference_endpoints": np.minimum(25, np.floor(14 * m**3 * (0.3 + 1.4 * draw()))).astype(
            np.int64
        ),
        "malware_monitoring": draw() < 0.15 + 0.8 * m,
        "documents_outgoing": outgoing,
        "documents_outgoing_signed": _portion(outgoing, _share(0.45 + 0.57 * m, 0.05, draw()), draw()),
        "documents_incoming": np.round(outgoing * (2.5 + 2.5 * draw())).astype(np.int64),
        "officials_using_document_system": _portion(officials, _share(0.5 + 0.55 * m, 0.08, draw()), draw()),
        "officials_with_email": _portion(officials, _share(0.4 + 0.55 * m, 0.1, draw()), draw()),
        "leaders_total": leaders,
        "leaders_with_signature_cert": _portion(leaders, _share(0.3 + 0.8 * m, 0.15, draw()), draw()),
        "periodic_reports_total": periodic,
        "periodic_reports_online": _portion(periodic, _share(0.35 + 0.7 * m, 0.08, draw()), draw()),
        "portal_has_commune_page": has_page,
        "portal_info_items_required": required,
        "portal_info_items_published": has_page
        * _portion(required, _share(0.3 + 0.7 * m, 0.1, draw()), draw()),
        "portal_qa_function": has_page & (draw() < 0.2 + 0.75 * m),
        "portal_articles_published": has_page * np.floor((2 + 40 * m) * (0.5 + draw())).astype(np.int64),
        "has_it_plan": draw() < 0.55 + 0.45 * m,
        "has_dt_steering_committee": draw() < 0.7 + 0.3 * m,
        "has_it_budget": draw() < 0.25 + 0.7 * m,
        "has_security_regulation": draw() < 0.2 + 0.75 * m,
        "it_staff_dedicated": np.floor(1.6 * m + 0.8 * draw()).astype(np.int64),
        "officials_trained_it": _portion(officials, _share(0.15 + 0.75 * m, 0.1, draw()), draw()),
        "community_tech_teams": _portion(villages, _share(0.2 + 0.85 * m, 0.1, draw()), draw()),
        "residents_adult": c.residents,
        "residents_vneid_level2": _portion(c.residents, _share(0.3 + 0.5 * m, 0.06, draw()), draw()),
    }
    columns: dict[str, list[Any]] = {name: array.tolist() for name, array in values.items()}
    columns |= {
        "report_id": [f"{code}-{period}" for code in c.codes],
        "period": [period] * len(m),
        "province_code": c.province_codes.tolist(),
        "commune_code": c.codes.tolist(),
        "commune_name": c.names,
        "submitted_at": _iso(submitted),
    }
    records = _rows(field_names(COMMUNE_REPORT_FIELDS), columns)
    for i in np.flatnonzero(defective):
        _corrupt_report(records[i], int(defect_kind[i] * len(REPORT_DEFECTS)), float(defect_pick[i]))
    legacy = _rng(seed, "legacy", period).random((3, len(records)))
    for i in np.flatnonzero((legacy[0] < legacy_rate) & ~defective):
        bounds = np.cumsum(list(LEGACY_IDENTIFICATIONS.values()))
        how = list(LEGACY_IDENTIFICATIONS)[int(np.searchsorted(bounds, legacy[1, i], side="right"))]
        records[i] = _identify_legacy(records[i], how, float(legacy[2, i]))
    return records


def _identify_legacy(record: Record, how: str, pick: float) -> Record:
    """The report as a commune still using pre-2025 units writes it (unchanged if none applies).

    ``pick`` chooses one of the legacy communes merged whole into the current one.
    """
    units = legacy_units_by_commune()[record["commune_code"]]
    if how == "names_ascii":  # only names that stay unambiguous without diacritics
        unique = tuple(u for u in units if u.unique_without_diacritics)
        units, how = (unique, how) if unique else (units, "names")
    if not units:
        return record
    unit = units[int(pick * len(units))]
    if how == "legacy_code":
        return record | {
            "report_id": f"{unit.code}-{record['period']}",
            "province_code": unit.province_code,
            "commune_code": unit.code,
            "commune_name": unit.name,
        }
    fold = strip_diacritics if how == "names_ascii" else str
    identified: Record = {}
    for name, value in record.items():
        if name in ("report_id", "province_code", "commune_code"):
            identified[name] = None
        elif name == "commune_name":
            identified |= {
                "commune_name": fold(unit.name),
                "district_name": fold(unit.district_name),
                "province_name": fold(unit.province_name),
            }
        else:
            identified[name] = value
    return identified


def _corrupt_report(record: Record, kind: int, pick: float) -> None:
    defect = REPORT_DEFECTS[kind]
    if defect == "numerator_exceeds_denominator":
        numerator, denominator = REPORT_PART_OF_WHOLE[int(pick * len(REPORT_PART_OF_WHOLE))]
        record[numerator] = record[denominator] + 1 + int(pick * 1000) % 5
    elif defect == "negative_count":
        name = _REPORT_COUNTS[int(pick * len(_REPORT_COUNTS))]
        record[name] = -max(1, record[name])
    else:  # unknown_commune: real codes are below 40000
        record["commune_code"] = "9" + record["commune_code"][1:]
        record["report_id"] = f"{record['commune_code']}-{record['period']}"


# --- dossiers -----------------------------------------------------------------------------
# A dossier is received on day d0 and then changes: received -> in_progress -> resolved or
# returned; a few resolved ones get a late correction 42-58 days after d0 (20-60 days after
# resolution). Each change is a version with its own updated_at; a window serves, per dossier,
# its last version inside the window. Lifecycles are generated per received day; the versions
# are indexed per change day.
_DOSSIER_DRAWS = 23
_RECEIVED, _IN_PROGRESS, _RESOLVED, _RETURNED = (
    DOSSIER_STATUSES.index(s) for s in ("received", "in_progress", "resolved", "returned")
)
DOSSIER_VERSIONS: tuple[str, ...] = ("received", "in_progress", "closed", "corrected")
_CLOSED, _CORRECTED = DOSSIER_VERSIONS.index("closed"), DOSSIER_VERSIONS.index("corrected")
RETURNED_SHARE = 0.06
CORRECTION_RATE = 0.03  # share of resolved dossiers corrected late
CORRECTION_LAG_DAYS = (42, 58)  # correction day - received day, inclusive range
_CORRECTION_DAYS_PER_RECEIVED_DAY = 3
_NEVER = np.iinfo(np.int64).max  # 'no such version' and 'no later version'


@lru_cache(maxsize=16)
def _public_holidays(year: int) -> frozenset[date]:
    """Vietnam's public holidays of a year (the maintained ``holidays`` package: Tết by the lunar calendar)."""
    return frozenset(holidays.country_holidays("VN", years=year))


def day_factor(day: date) -> float:
    """Expected received dossiers on ``day`` relative to ``dossiers_per_day``: weekday x month x holiday."""
    if day in _public_holidays(day.year):
        return _HOLIDAY_FACTOR * _MONTH_FACTOR[day.month - 1]
    return _WEEKDAY_FACTOR[day.weekday()] * _MONTH_FACTOR[day.month - 1]


@lru_cache(maxsize=4096)
def _day_counts(day: date, seed: int, dossiers_per_day: int) -> np.ndarray:
    """Dossiers per commune (registry order) received on a local day."""
    rate = dossiers_per_day * day_factor(day) * _communes(seed).dossier_share
    return _rng(seed, "dossier-counts", day.isoformat()).poisson(rate)


@lru_cache(maxsize=4096)
def _correction_days(day: date, seed: int) -> tuple[date, ...]:
    """The working days on which late corrections of dossiers received on `day` are made."""
    first, last = CORRECTION_LAG_DAYS
    candidates = [day + timedelta(days=k) for k in range(first, last + 1)]
    working = [d for d in candidates if d.weekday() < 5]
    picked = _rng(seed, "correction-days", day.isoformat()).choice(
        len(working), size=_CORRECTION_DAYS_PER_RECEIVED_DAY, replace=False
    )
    return tuple(working[i] for i in sorted(picked))


def _lifetime_days(seed: int) -> int:
    """Whole days from a dossier's received day to its last change before any correction."""
    # received_at < d0 + 1 d; resolved_at < received_at + processing days + 4.5 d + 17 h (moved into
    # office hours); hand-over < 6 h: the closed version's local day is at most d0 + processing days + 6
    return int(_catalogue(seed).processing_days.max()) + 6


@dataclass(frozen=True)
class _Lifecycles:
    """Every dossier received on one local day, in (commune, seq) order, with all its versions."""

    day: date
    commune: np.ndarray  # index into _Communes
    seq: np.ndarray
    procedure_codes: np.ndarray
    channel: np.ndarray  # index into CHANNELS, or len(CHANNELS) for 'fax'
    outcome: np.ndarray  # _RESOLVED or _RETURNED
    received: np.ndarray
    due: np.ndarray
    resolved: np.ndarray
    resolved_corrected: np.ndarray
    fee: np.ndarray
    fee_corrected: np.ndarray
    paid_online: np.ndarray
    digitised: np.ndarray
    digitised_corrected: np.ndarray
    changes: np.ndarray  # (n, 4): updated_at of each version of DOSSIER_VERSIONS, _NEVER if none

    def ids(self, rows: np.ndarray, seed: int) -> list[str]:
        stamp = self.day.strftime("%Y%m%d")
        codes = _communes(seed).codes[self.commune[rows]]
        return [f"{code}-{stamp}-{s:05d}" for code, s in zip(codes, self.seq[rows], strict=True)]

    def columns(self, rows: np.ndarray, versions: np.ndarray, seed: int) -> dict[str, np.ndarray]:
        """The given versions (index into DOSSIER_VERSIONS) of the given dossiers, column by column:
        codes and labels as numpy strings, times as Unix seconds (resolved_at: _NULL_TS while open)."""
        c = _communes(seed)
        communes = self.commune[rows]
        closed, corrected = versions >= _CLOSED, versions == _CORRECTED
        status = np.select([versions == 0, versions == 1], [_RECEIVED, _IN_PROGRESS], self.outcome[rows])
        resolved = np.where(corrected, self.resolved_corrected[rows], self.resolved[rows])
        return {
            "procedure_code": self.procedure_codes[rows],
            "province_code": c.province_codes[communes],
            "commune_code": c.codes[communes],
            "channel": np.array((*CHANNELS, "fax"))[self.channel[rows]],
            "status": np.array(DOSSIER_STATUSES)[status],
            "received_at": self.received[rows],
            "due_at": self.due[rows],
            "resolved_at": np.where(closed, resolved, _NULL_TS),
            "updated_at": self.changes[rows, versions],
            "fee_vnd": np.where(corrected, self.fee_corrected[rows], self.fee[rows]),
            "paid_online": self.paid_online[rows],
            "digitised": np.where(corrected, self.digitised_corrected[rows], self.digitised[rows]),
        }

    def records(self, rows: np.ndarray, versions: np.ndarray, seed: int) -> list[Record]:
        """The given versions (index into DOSSIER_VERSIONS) of the given dossiers, as API records."""
        values = self.columns(rows, versions, seed)
        resolved_at = values["resolved_at"]
        open_ = (resolved_at == _NULL_TS).tolist()
        resolved = _iso(np.where(resolved_at == _NULL_TS, 0, resolved_at))
        columns: dict[str, list[Any]] = {
            "dossier_id": self.ids(rows, seed),
            **{name: values[name].tolist() for name in ("procedure_code", "province_code", "commune_code")},
            "channel": values["channel"].tolist(),
            "status": values["status"].tolist(),
            "received_at": _iso(values["received_at"]),
            "due_at": _iso(values["due_at"]),
            "resolved_at": [None if o else s for s, o in zip(resolved, open_, strict=True)],
            "updated_at": _iso(values["updated_at"]),
            **{name: values[name].tolist() for name in ("fee_vnd", "paid_online", "digitised")},
        }
        return _rows(field_names(DOSSIER_FIELDS), columns)

    def table(self, rows: np.ndarray, versions: np.ndarray, seed: int) -> pa.Table:
        """The same versions as an Arrow table in the bulk-export schema (EXPORT_SCHEMA)."""
        values = self.columns(rows, versions, seed)
        d = _export_dictionaries(seed)
        communes = self.commune[rows]
        labels: dict[str, tuple[np.ndarray, pa.Array]] = {  # code columns built from small dictionaries
            "commune_code": (communes, d.communes),
            "province_code": (d.province_of_commune[communes], d.provinces),
            "channel": (self.channel[rows], d.channels),
        }
        text = {
            name: pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), dictionary).cast(pa.string())
            for name, (indices, dictionary) in labels.items()
        }
        stamp = self.day.strftime("%Y%m%d")
        seq = pc.utf8_lpad(pc.cast(pa.array(self.seq[rows]), pa.string()), 5, "0")
        arrays: dict[str, pa.Array] = {"dossier_id": pc.binary_join_element_wise(text["commune_code"], stamp, seq, "-")}
        for f in EXPORT_SCHEMA:
            if f.name == "dossier_id":
                continue
            column = values[f.name]
            if f.name in text:
                arrays[f.name] = text[f.name]
            elif pa.types.is_timestamp(f.type):
                arrays[f.name] = pa.array(column * 1_000_000, f.type, mask=column == _NULL_TS)
            else:
                arrays[f.name] = pa.array(column, f.type)
        return pa.table(arrays, schema=EXPORT_SCHEMA)


@lru_cache(maxsize=40)
def _lifecycles(day: date, seed: int, dossiers_per_day: int, defect_rate: float) -> _Lifecycles:
    counts = _day_counts(day, seed, dossiers_per_day)
    n = int(counts.sum())
    cat = _catalogue(seed)
    g = _rng(seed, "dossiers", day.isoformat())
    commune = np.repeat(np.arange(len(counts)), counts)
    seq = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    procedure = g.choice(len(cat.codes), size=n, p=cat.popularity)
    draw = _Draws(g.random((_DOSSIER_DRAWS, n)))
    defective, defect_kind, defect_pick = draw() < defect_rate, draw(), draw()
    m = _maturity(seed, quarter_of(day))[commune]
    level = cat.levels[procedure]
    pdays = cat.processing_days[procedure] * _DAY_S

    p_online = np.select([level == 0, level == 1], [0.1 + 0.75 * m, 0.05 + 0.5 * m], 0.0)
    online = draw() < p_online
    channel = np.where(online, 0, np.where(draw() < 0.07, 2, 1))
    outcome = np.where(draw() < RETURNED_SHARE, _RETURNED, _RESOLVED)
    in_hours = draw() < 0.85
    u = draw()
    received = _local_epoch(day) + np.where(in_hours, 7.5 * 3600 + 9.5 * 3600 * u, _DAY_S * u).astype(
        np.int64
    )

    late = (outcome == _RESOLVED) & (draw() < np.clip(0.11 - 0.1 * m, 0.0, 1.0))
    u = draw()
    within = np.floor((0.02 + 0.98 * u) * pdays).astype(np.int64)
    overdue = pdays + 3600 + np.floor(u * (4.5 * _DAY_S - 3600)).astype(np.int64)
    due = received + pdays
    resolved = _office_hours(received + np.where(late, overdue, within), draw())
    resolved = np.where(late, np.maximum(resolved, due + 3600), np.minimum(resolved, due))
    resolved = np.maximum(resolved, received + 60)
    span = resolved - received
    progress = _office_hours(received + np.floor((0.05 + 0.3 * draw()) * span).astype(np.int64), draw())
    progress = np.clip(progress, received + 1, resolved - 1)
    hand_over = np.where(draw() < 0.6, 0, np.floor(6 * 3600 * draw())).astype(np.int64)  # resolved -> updated
    closed_at = resolved + hand_over

    fee = cat.fees[procedure]
    pay = np.where(online, np.clip(0.35 + 0.6 * m, 0.0, 1.0), 0.04)
    paid_online = (fee > 0) & (draw() < pay)
    digitised = draw() < np.clip(0.2 + 0.75 * m, 0.0, 1.0)

    # Late corrections: the fee, the digitisation flag or resolved_at (moved earlier, never
    # before received_at), on one of the received day's correction days.
    corrected = (outcome == _RESOLVED) & (draw() < CORRECTION_RATE)
    correction_days = np.array([_local_epoch(d) for d in _correction_days(day, seed)], dtype=np.int64)
    which = np.floor(draw() * len(correction_days)).astype(np.int64)
    correction_at = correction_days[which] + np.floor(7.5 * 3600 + 9.5 * 3600 * draw()).astype(np.int64)
    u, pick = draw(), draw()
    fix_fee = corrected & (fee > 0) & (u < 1 / 3)
    fix_digitised = corrected & ~fix_fee & ~digitised & (u < 2 / 3)
    fix_resolved = corrected & ~fix_fee & ~fix_digitised
    other_fee = _FEES[
        (np.searchsorted(_FEES, fee) + 1 + np.floor(pick * (len(_FEES) - 1)).astype(np.int64)) % len(_FEES)
    ]
    fee_corrected = np.where(fix_fee, other_fee, fee)
    shift = 1 + np.floor(pick * (np.minimum(2 * _DAY_S, span) - 1)).astype(np.int64)
    resolved_corrected = np.where(fix_resolved, resolved - shift, resolved)

    procedure_codes = cat.codes[procedure]
    kind = np.where(defective, np.floor(defect_kind * len(DOSSIER_DEFECTS)), -1)
    bad = kind == DOSSIER_DEFECTS.index("resolved_before_received")
    before = received - 3600 - np.floor(3 * _DAY_S * defect_pick).astype(np.int64)
    resolved, resolved_corrected = np.where(bad, before, resolved), np.where(bad, before, resolved_corrected)
    channel = np.where(kind == DOSSIER_DEFECTS.index("unknown_channel"), len(CHANNELS), channel)
    bad = kind == DOSSIER_DEFECTS.index("unknown_procedure")
    procedure_codes[bad] = [f"9.{int(p * 1e6):06d}" for p in defect_pick[bad]]
    bad = kind == DOSSIER_DEFECTS.index("negative_fee")
    fee[bad] = fee_corrected[bad] = -np.maximum(fee[bad], 10_000)

    changes = np.stack([received, progress, closed_at, np.where(corrected, correction_at, _NEVER)], axis=1)
    return _Lifecycles(
        day=day,
        commune=commune,
        seq=seq,
        procedure_codes=procedure_codes,
        channel=channel,
        outcome=outcome,
        received=received,
        due=due,
        resolved=resolved,
        resolved_corrected=resolved_corrected,
        fee=fee,
        fee_corrected=fee_corrected,
        paid_online=paid_online,
        digitised=digitised,
        digitised_corrected=digitised | fix_digitised,
        changes=changes,
    )


@dataclass(frozen=True)
class _ChangeDay:
    """Every dossier version whose updated_at falls on one local day, by (updated_at, dossier_id)."""

    updated: np.ndarray
    next_change: np.ndarray  # updated_at of the dossier's next version, _NEVER after its last
    source: np.ndarray  # index into received_days
    row: np.ndarray  # row in that received day's lifecycles
    version: np.ndarray  # index into DOSSIER_VERSIONS
    province: np.ndarray  # province code of the receiving commune
    received_days: tuple[date, ...]
    settings: tuple[int, int, float]  # seed, dossiers_per_day, defect_rate

    def _by_source(
        self, positions: np.ndarray, build: Callable[[_Lifecycles, np.ndarray], list[Any]]
    ) -> list[Any]:
        """build(lifecycles, positions of one received day) for each day, reassembled in order."""
        out: list[Any] = [None] * len(positions)
        sources = self.source[positions]
        for s in np.unique(sources):
            at = np.flatnonzero(sources == s)
            data = _lifecycles(self.received_days[s], *self.settings)
            for i, value in zip(at, build(data, positions[at]), strict=True):
                out[i] = value
        return out

    def position_after(self, key: DossierKey) -> int:
        """Index of the first version strictly after key."""
        lo = int(np.searchsorted(self.updated, key[0], side="left"))
        hi = int(np.searchsorted(self.updated, key[0], side="right"))
        seed = self.settings[0]
        ids = self._by_source(np.arange(lo, hi), lambda data, at: data.ids(self.row[at], seed))
        return lo + bisect.bisect_right(ids, key[1])

    def records(self, positions: np.ndarray) -> list[Record]:
        seed = self.settings[0]
        return self._by_source(positions, lambda data, at: data.records(self.row[at], self.version[at], seed))


@lru_cache(maxsize=8)
def _code_rank(seed: int) -> np.ndarray:
    """Rank of each commune's code (registry order -> code order), to sort by dossier_id."""
    return np.argsort(np.argsort(_communes(seed).codes, kind="stable"), kind="stable")


@lru_cache(maxsize=100)
def _change_day(day: date, seed: int, dossiers_per_day: int, defect_rate: float) -> _ChangeDay:
    lo = _local_epoch(day)
    hi = lo + _DAY_S
    lifetime = [day - timedelta(days=k) for k in range(_lifetime_days(seed), -1, -1)]
    first, last = CORRECTION_LAG_DAYS
    corrected = [day - timedelta(days=k) for k in range(last, first - 1, -1)]
    sources = sorted(lifetime + [d for d in corrected if day in _correction_days(d, seed)])
    code_rank = _code_rank(seed)
    province_codes = _communes(seed).province_codes
    parts: list[tuple[np.ndarray, ...]] = []
    for s, received_day in enumerate(sources):
        data = _lifecycles(received_day, seed, dossiers_per_day, defect_rate)
        rows, versions = np.nonzero((data.changes >= lo) & (data.changes < hi))
        following = np.hstack([data.changes, np.full((len(data.changes), 1), _NEVER)])[rows, versions + 1]
        parts.append(
            (
                data.changes[rows, versions],
                following,
                np.full(len(rows), s, dtype=np.int16),
                rows.astype(np.int32),
                versions.astype(np.int8),
                code_rank[data.commune[rows]],
                data.seq[rows],
                province_codes[data.commune[rows]],
            )
        )
    updated, following, source, row, version, rank, seq, province = (
        np.concatenate(c) for c in zip(*parts, strict=True)
    )
    order = np.lexsort((seq, source, rank, updated))  # sources in day order: id order
    return _ChangeDay(
        updated=updated[order],
        next_change=following[order],
        source=source[order],
        row=row[order],
        version=version[order],
        province=province[order],
        received_days=tuple(sources),
        settings=(seed, dossiers_per_day, defect_rate),
    )


@dataclass(frozen=True)
class DossierPage:
    items: list[Record]
    total: int  # dossiers in the whole window
    has_more: bool  # dossiers of the window remain after the last item


def _local_date(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, LOCAL_TZ).date()


def dossier_page(
    start: datetime,
    end: datetime,
    *,
    seed: int = DEFAULT_SEED,
    dossiers_per_day: int = DEFAULT_DOSSIERS_PER_DAY,
    defect_rate: float = 0.0,
    after: DossierKey | None = None,
    limit: int | None = None,
    province_code: str | None = None,
) -> DossierPage:
    """Dossiers changed in start <= updated_at < end, each as of its last change in the window,
    strictly after `after`, in (updated_at, dossier_id) order; only one province's if ``province_code``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    if end < start:
        raise ValueError("window end is before its start")
    lo, hi = math.ceil(start.timestamp()), math.ceil(end.timestamp())  # whole seconds: t >= lo and t < hi
    spans: list[tuple[date, _ChangeDay, np.ndarray]] = []  # per change day: positions served
    if hi > lo:
        day, last = _local_date(lo), _local_date(hi - 1)
        while day <= last:
            versions = _change_day(day, seed, dossiers_per_day, defect_rate)
            begin, stop = np.searchsorted(versions.updated, [lo, hi])
            latest = begin + np.flatnonzero(versions.next_change[begin:stop] >= hi)  # no later change
            if province_code is not None:
                latest = latest[versions.province[latest] == province_code]
            spans.append((day, versions, latest))
            day += timedelta(days=1)
    total = sum(len(positions) for _, _, positions in spans)

    if after is not None:
        cursor_day = _local_date(after[0])
        spans = [
            (
                day,
                versions,
                positions[positions >= versions.position_after(after)] if day == cursor_day else positions,
            )
            for day, versions, positions in spans
            if day >= cursor_day
        ]
    items: list[Record] = []
    remaining = total if limit is None else limit
    for index, (_, versions, positions) in enumerate(spans):
        take = positions[:remaining]
        items.extend(versions.records(take))
        remaining -= len(take)
        if remaining == 0:
            later = len(positions) - len(take) + sum(len(p) for _, _, p in spans[index + 1 :])
            return DossierPage(items=items, total=total, has_more=later > 0)
    return DossierPage(items=items, total=total, has_more=False)


def dossiers_updated_between(
    start: datetime,
    end: datetime,
    seed: int = DEFAULT_SEED,
    dossiers_per_day: int = DEFAULT_DOSSIERS_PER_DAY,
    defect_rate: float = 0.0,
) -> list[Record]:
    """Every dossier changed in start <= updated_at < end, as of its last change in the window."""
    return dossier_page(
        start, end, seed=seed, dossiers_per_day=dossiers_per_day, defect_rate=defect_rate
    ).items


def dossier_versions(
    day: date,
    seed: int = DEFAULT_SEED,
    dossiers_per_day: int = DEFAULT_DOSSIERS_PER_DAY,
    defect_rate: float = 0.0,
) -> dict[str, list[Record]]:
    """Every version of every dossier received on a local day, by dossier_id, oldest first."""
    data = _lifecycles(day, seed, dossiers_per_day, defect_rate)
    rows, versions = np.nonzero(data.changes != _NEVER)
    result: dict[str, list[Record]] = {}
    for record in data.records(rows, versions, seed):
        result.setdefault(record["dossier_id"], []).append(record)
    return result


# --- bulk export (backfills) ------------------------------------------------------------------------
EXPORT_SCHEMA = pa.schema(
    [pa.field(f.name, DOSSIER_EXPORT_TYPES[f.name], nullable=f.nullable) for f in DOSSIER_FIELDS]
)
"""Columns of a bulk export: the dossier fields, codes as plain text, times as UTC timestamps."""


@dataclass(frozen=True)
class _ExportDictionaries:
    communes: pa.Array  # codes in registry order
    provinces: pa.Array
    province_of_commune: np.ndarray  # index into provinces, per commune
    channels: pa.Array


@lru_cache(maxsize=8)
def _export_dictionaries(seed: int) -> _ExportDictionaries:
    c = _communes(seed)
    provinces, province_index = np.unique(c.province_codes, return_inverse=True)
    return _ExportDictionaries(
        communes=pa.array(c.codes.tolist(), pa.string()),
        provinces=pa.array(provinces.tolist(), pa.string()),
        province_of_commune=province_index,
        channels=pa.array([*CHANNELS, "fax"], pa.string()),
    )


def month_days(month: str) -> list[date]:
    """The local days of a month written ``YYYY-MM``."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"month {month!r} must be written YYYY-MM, e.g. 2026-07") from None
    days, day = [], first
    while day.month == first.month:
        days.append(day)
        day += timedelta(days=1)
    return days


def dossier_export(
    month: str,
    as_of: datetime,
    *,
    province_code: str | None = None,
    seed: int = DEFAULT_SEED,
    dossiers_per_day: int = DEFAULT_DOSSIERS_PER_DAY,
    defect_rate: float = 0.0,
) -> pa.Table:
    """Every dossier received in the local ``month`` (only ``province_code``'s if given), each as of its
    last change before ``as_of``, by received day, commune (registry order) and sequence: what the paged API would have returned for it by
    then. A dossier received after ``as_of`` is not in it."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    cut = math.ceil(as_of.timestamp())  # versions with updated_at < as_of
    table, slices = _month_export(month, cut, seed, dossiers_per_day, defect_rate)
    if province_code is None:
        return table
    offset, length = slices.get(province_code, (0, 0))
    return table.slice(offset, length)


@lru_cache(maxsize=2)
def _month_export(
    month: str, cut: int, seed: int, dossiers_per_day: int, defect_rate: float
) -> tuple[pa.Table, dict[str, tuple[int, int]]]:
    """The whole country's export of a month, grouped by province (stable), with each province's slice:
    34 requests for the month's provinces build it once."""
    d = _export_dictionaries(seed)
    parts: list[pa.Table] = []
    provinces: list[np.ndarray] = []
    for day in month_days(month):
        data = _lifecycles(day, seed, dossiers_per_day, defect_rate)
        versions = (data.changes < cut).sum(axis=1) - 1  # versions are in time order
        rows = np.flatnonzero(versions >= 0)
        parts.append(data.table(rows, versions[rows], seed))
        provinces.append(d.province_of_commune[data.commune[rows]])
    province = np.concatenate(provinces)
    order = np.argsort(province, kind="stable")
    table = pa.concat_tables(parts).take(pa.array(order))
    index, starts, counts = np.unique(province[order], return_index=True, return_counts=True)
    names = d.provinces.to_pylist()
    return table, {names[i]: (int(s), int(n)) for i, s, n in zip(index, starts, counts, strict=True)}
