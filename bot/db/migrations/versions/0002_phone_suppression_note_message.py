"""phone suppression per number; the message a task note carries; cleaned inbound webhooks

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "phone_suppression",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("opted_out_at", bot.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=30), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_phone_suppression_message_id_message")
        ),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_phone_suppression")),
    )
    with op.batch_alter_table("task_note", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_task_note_message_id_message"), "message", ["message_id"], ["id"]
        )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cleaned", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    # Numbers already opted out keep their opt-out as a number, too.
    op.execute(
        "INSERT INTO phone_suppression (phone, opted_out_at, source) "
        "SELECT phone, MIN(opted_out_at), 'patient' FROM patient WHERE opted_out_at IS NOT NULL GROUP BY phone"
    )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("cleaned")
    with op.batch_alter_table("task_note", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_task_note_message_id_message"), type_="foreignkey")
        batch_op.drop_column("message_id")
    op.drop_table("phone_suppression")
