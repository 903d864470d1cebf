"""Sender health: each sender's newest breaker states, as stats last heard them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

One row per sender process, replaced every few seconds; rows of senders gone for a day are
deleted by the same upsert, so the table stays as small as the fleet.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sender_health',
        sa.Column('instance', sa.String(200), primary_key=True),
        sa.Column('circuits', JSONB(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column('gateways', JSONB(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column('seen_at', sa.TIMESTAMP(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('sender_health')
