"""egov-index: the domain package (pure Python, importable without a scheduler).

Import rule: everything imports this package as ``egov_index``; see README "Layout".
"""

__version__ = "0.1.0"
