"""The header mapping table: Vietnamese column labels (and their variants) -> canonical field.

The one documented place (see docs/sources.md, "Header mapping") where a label that a commune
writes in an Excel or CSV report is tied to a canonical field of ``schemas.COMMUNE_REPORT_FIELDS``,
or to a unit-identification field (``UNIT_FIELDS``) used to resolve the commune when the file
carries no current code. The first label of each entry is the one the reference server writes;
the others are variants seen in the wild. Matching is done on ``label_key`` (NFC, lower case,
diacritics and punctuation folded), so "Số CBCC có máy tính" and "so cbcc co may tinh" match.
"""

from __future__ import annotations

import re
import unicodedata

# Fields that identify the unit and period in a file, resolved before validation.
UNIT_FIELDS: tuple[str, ...] = ("commune_name", "district_name", "province_name", "commune_code", "province_code")

HEADER_LABELS: dict[str, tuple[str, ...]] = {
    # identification
    "period": ("Kỳ báo cáo", "Kỳ", "Quý báo cáo"),
    "commune_code": ("Mã xã", "Mã đơn vị hành chính", "Mã ĐVHC", "Mã đơn vị"),
    "commune_name": ("Tên xã", "Xã/phường/đặc khu", "Xã, phường, thị trấn", "Đơn vị", "Tên đơn vị"),
    "district_name": ("Huyện", "Quận/huyện", "Huyện/thị xã/thành phố"),
    "province_name": ("Tỉnh", "Tỉnh/thành phố", "Tỉnh, thành phố"),
    "province_code": ("Mã tỉnh",),
    "submitted_at": ("Ngày báo cáo", "Ngày gửi báo cáo", "Ngày cập nhật"),
    # c1 infrastructure
    "officials_total": ("Tổng số cán bộ, công chức", "Tổng số CBCC", "Số CBCCVC"),
    "officials_with_computer": ("Số CBCC có máy tính", "Số cán bộ, công chức được trang bị máy tính"),
    "computers_total": ("Tổng số máy tính", "Số máy tính"),
    "computers_internet": ("Số máy tính kết nối Internet", "Máy tính kết nối mạng Internet"),
    "has_lan": ("Có mạng LAN", "Mạng nội bộ (LAN)", "Có mạng nội bộ"),
    "connected_state_network": ("Kết nối mạng truyền số liệu chuyên dùng", "Mạng TSLCD"),
    "villages_total": ("Tổng số thôn, tổ dân phố", "Số thôn/tổ dân phố"),
    "villages_with_broadband": ("Số thôn có băng rộng cố định", "Số thôn có cáp quang"),
    "video_conference_endpoints": ("Số điểm cầu truyền hình trực tuyến", "Điểm cầu trực tuyến"),
    "malware_monitoring": ("Giám sát mã độc tập trung", "Phòng chống mã độc tập trung"),
    # c2 ICT use inside agencies
    "documents_outgoing": ("Tổng số văn bản đi", "Văn bản đi"),
    "documents_outgoing_signed": ("Số văn bản đi có chữ ký số", "Văn bản đi ký số"),
    "documents_incoming": ("Tổng số văn bản đến", "Văn bản đến"),
    "officials_using_document_system": (
        "Số CBCC sử dụng hệ thống quản lý văn bản",
        "Số CBCC sử dụng phần mềm QLVB",
    ),
    "officials_with_email": ("Số CBCC có thư điện tử công vụ", "Số tài khoản thư công vụ"),
    "leaders_total": ("Số lãnh đạo UBND", "Tổng số lãnh đạo"),
    "leaders_with_signature_cert": ("Số lãnh đạo có chứng thư số", "Lãnh đạo có chữ ký số"),
    "periodic_reports_total": ("Số báo cáo định kỳ", "Tổng số báo cáo định kỳ"),
    "periodic_reports_online": ("Số báo cáo gửi qua hệ thống", "Báo cáo qua hệ thống thông tin báo cáo"),
    # c3 web portal
    "portal_has_commune_page": ("Có trang thông tin điện tử", "Có trang TTĐT"),
    "portal_info_items_required": ("Số mục thông tin bắt buộc", "Mục thông tin phải công khai"),
    "portal_info_items_published": ("Số mục thông tin đã công khai", "Mục thông tin đã đăng"),
    "portal_qa_function": ("Có chức năng hỏi đáp", "Chức năng hỏi đáp, góp ý"),
    "portal_articles_published": ("Số tin bài đã đăng", "Số tin bài"),
    # c5 policies
    "has_it_plan": ("Có kế hoạch ứng dụng CNTT", "Kế hoạch chuyển đổi số"),
    "has_dt_steering_committee": ("Có Ban chỉ đạo chuyển đổi số", "Ban chỉ đạo CĐS"),
    "has_it_budget": ("Có kinh phí cho CNTT", "Bố trí kinh phí CNTT"),
    "has_security_regulation": ("Có quy chế an toàn thông tin", "Quy chế ATTT"),
    # c6 human resources
    "it_staff_dedicated": ("Số cán bộ chuyên trách CNTT", "Cán bộ phụ trách CNTT"),
    "officials_trained_it": ("Số CBCC được tập huấn CNTT", "Số lượt CBCC được đào tạo kỹ năng số"),
    "community_tech_teams": ("Số tổ công nghệ số cộng đồng", "Tổ CNS cộng đồng"),
    "residents_adult": ("Số dân từ đủ 14 tuổi", "Số người trưởng thành"),
    "residents_vneid_level2": ("Số người có tài khoản VNeID mức 2", "Tài khoản định danh mức 2"),
}


def label_key(label: str) -> str:
    """Fold a label for matching: NFC -> strip diacritics (đ -> d) -> lower -> alphanumerics only."""
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFC", str(label)))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn").replace("đ", "d").replace("Đ", "D")
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()


LABEL_INDEX: dict[str, str] = {label_key(lbl): field for field, labels in HEADER_LABELS.items() for lbl in labels}


def field_for_label(label: str) -> str | None:
    """The canonical field a header label maps to, or None. A canonical name maps to itself."""
    key = label_key(label)
    if key.replace(" ", "_") in HEADER_LABELS:
        return key.replace(" ", "_")
    return LABEL_INDEX.get(key)
