"""opt-outs, html, correlation ids, channel releases, summaries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channel_release',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('released_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_release'))
    )
    op.create_index('ix_channel_release_channel_released_at', 'channel_release', ['channel', 'released_at'], unique=False)
    op.create_table('summary_report',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_summary_report'))
    )
    op.create_index('ix_message_campaign_id_sent_at', 'message', ['campaign_id', 'sent_at'], unique=False)
    op.add_column('campaign', sa.Column('html', sa.Text(), nullable=True))
    op.add_column('campaign', sa.Column('correlation_id', sa.String(length=64), nullable=True))
    op.add_column('client', sa.Column('opted_out', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False))


def downgrade() -> None:
    op.drop_column('client', 'opted_out')
    op.drop_index('ix_message_campaign_id_sent_at', table_name='message')
    op.drop_column('campaign', 'correlation_id')
    op.drop_column('campaign', 'html')
    op.drop_table('summary_report')
    op.drop_index('ix_channel_release_channel_released_at', table_name='channel_release')
    op.drop_table('channel_release')
