"""What a run published, as content digests: the manifests' sha256 by relative path."""

from __future__ import annotations

import json
from pathlib import Path

from egov_index.store import MANIFEST_FILE


def manifest_digests(data_root: Path, subdirs: tuple[str, ...] | None = None) -> dict[str, str]:
    """sha256 of every published partition (its manifest) under ``data_root``, or only under ``subdirs``."""
    roots = [data_root / sub for sub in subdirs] if subdirs else [data_root]
    return {
        str(m.relative_to(data_root)): json.loads(m.read_text())["sha256"]
        for root in roots
        for m in sorted(root.rglob(MANIFEST_FILE))
    }
