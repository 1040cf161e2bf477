"""Alembic environment: runs on the connection midbot hands in (see bot.db.migrate)."""

from __future__ import annotations

from alembic import context

from bot.db import models  # noqa: F401  (registers the tables)
from bot.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `midbot migrate`, which passes the connection in")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
