"""left-out counts on campaign progress

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('campaign_progress', sa.Column('left_out_no_address', sa.Integer(), server_default=sa.text('0'), nullable=False))
    op.add_column('campaign_progress', sa.Column('left_out_opted_out', sa.Integer(), server_default=sa.text('0'), nullable=False))


def downgrade() -> None:
    op.drop_column('campaign_progress', 'left_out_opted_out')
    op.drop_column('campaign_progress', 'left_out_no_address')
