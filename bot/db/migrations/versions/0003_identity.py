"""source ids per site and system: the same id at two sites, or under two FHIR systems, is two records

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "source_id",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", bot.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_source_id_site_id_site")),
        sa.PrimaryKeyConstraint("kind", "site_id", "system", "value", name=op.f("pk_source_id")),
    )
    with op.batch_alter_table("source_id", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_source_id_target_id"), ["target_id"], unique=False)
    # Records already on file keep their ids as their site's own source ids.
    now = "CURRENT_TIMESTAMP"
    op.execute(
        "INSERT INTO source_id (kind, site_id, system, value, target_id, created_at) "
        f"SELECT 'patient', site_id, 'urn:midbot:site:' || site_id, id, id, {now} FROM patient"
    )
    op.execute(
        "INSERT INTO source_id (kind, site_id, system, value, target_id, created_at) "
        f"SELECT 'prescription', site_id, 'urn:midbot:site:' || site_id, id, id, {now} FROM prescription"
    )
    op.execute(
        "INSERT INTO source_id (kind, site_id, system, value, target_id, created_at) "
        f"SELECT 'fill', p.site_id, 'urn:midbot:site:' || p.site_id, f.id, f.id, {now} "
        "FROM fill f JOIN prescription p ON p.id = f.prescription_id"
    )


def downgrade() -> None:
    with op.batch_alter_table("source_id", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_id_target_id"))
    op.drop_table("source_id")
