"""program-scoped opt-out: a patient who stopped one kind of text

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "program_opt_out",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("opted_out_at", bot.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=30), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_program_opt_out_message_id_message")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_program_opt_out_patient_id_patient")
        ),
        sa.PrimaryKeyConstraint("patient_id", "kind", name=op.f("pk_program_opt_out")),
    )


def downgrade() -> None:
    op.drop_table("program_opt_out")
