"""scheduling state: due index on not_before, campaign schedule, channel buckets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

DUE_KEY = "coalesce(not_before, '-infinity'::timestamptz)"


def upgrade() -> None:
    op.drop_index('ix_message_due', table_name='message')
    op.create_index(
        'ix_message_due', 'message', ['campaign_id', sa.text(DUE_KEY), 'id'],
        unique=False, postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table('campaign_schedule',
    sa.Column('campaign_id', sa.BigInteger(), nullable=False),
    sa.Column('window_start', sa.Time(), nullable=True),
    sa.Column('window_end', sa.Time(), nullable=True),
    sa.Column('ends_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('window_check_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('tokens', sa.Double(), server_default=sa.text('0'), nullable=False),
    sa.Column('refilled_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_schedule_campaign_id_campaign'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_campaign_schedule'))
    )
    op.create_table('channel_bucket',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('tokens', sa.Double(), server_default=sa.text('0'), nullable=False),
    sa.Column('refilled_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('channel', name=op.f('pk_channel_bucket'))
    )
    # Campaigns already started keep their window as applied; their messages, which have no
    # not_before yet, get one from the scheduler's next tick.
    op.execute(
        """
        INSERT INTO campaign_schedule (campaign_id, window_start, window_end, ends_at)
        SELECT id, window_start, window_end, ends_at FROM campaign
         WHERE status IN ('running', 'paused')
        """
    )


def downgrade() -> None:
    op.drop_table('channel_bucket')
    op.drop_table('campaign_schedule')
    op.drop_index('ix_message_due', table_name='message')
    op.create_index(
        'ix_message_due', 'message', ['campaign_id', 'id'],
        unique=False, postgresql_where=sa.text("status = 'pending'"),
    )
