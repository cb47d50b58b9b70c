"""Alembic environment of egov-index: runs on a connection handed in by the caller.

Run through ``egov_index.ledger.migrate(engine)`` (``Ledger.open`` does), which opens the
transaction, takes the migration lock and passes the connection in
``config.attributes["connection"]``. To write a new revision (then ``ruff check --fix`` it)::

    from alembic import command
    from egov_index.ledger import Ledger, alembic_config
    config = alembic_config()
    with Ledger.open(url) as ledger, ledger.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, "what changes", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

from alembic import context

import egov_index.sql_publish  # noqa: F401,E402  (registers its tables on Base.metadata)
import egov_index.validation_history  # noqa: F401,E402
from egov_index.ledger import VERSION_TABLE, Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("egov_index migrations run on a connection: use egov_index.ledger.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
