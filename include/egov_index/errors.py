"""The pipeline's failure types, in one light module (the DAGs' retry policy imports them at parse time).

Retryable: SourceError (network trouble, 5xx after the client's own retries).
Fail fast: everything else here — retrying cannot fix bad data or a refused request.
"""

from __future__ import annotations


class SourceError(RuntimeError):
    """A source did not answer usably (network, 5xx after retries, unreadable body): worth a retry."""


class SourceRejectedError(SourceError):
    """The source refused the request (4xx): retrying will not help; fix the connection or request."""


class SourceDataError(SourceError):
    """Pages contradict each other (totals, cursors, duplicates): the data is wrong, do not load it."""


class SchemaDriftError(ValueError):
    """Required columns are missing from a whole batch."""


class DataQualityBlocked(Exception):
    """A critical expectation failed (or too many rows were quarantined): nothing was published."""


class AccountingError(RuntimeError):
    """Rows pulled != rows in snapshot + rows in quarantine: something would be lost."""


class InboxFilesFailed(RuntimeError):
    """Some inbox files could not be ingested (moved to inbox/failed/); the others were."""


class MissingInputError(FileNotFoundError):
    """A snapshot a computation needs does not exist yet (e.g. no commune reports of the period): a retry
    minutes later will not create it; run the ingest that produces it first."""
