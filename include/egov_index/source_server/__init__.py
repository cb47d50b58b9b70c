"""Reference source server: the deterministic stand-in for a province's reporting system and
public-service portal (contract: docs/sources.md).

Nothing is imported here, so ``import egov_index.source_server.generator`` stays free of FastAPI.
"""
