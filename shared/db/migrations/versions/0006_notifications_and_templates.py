"""Notifications from applications and stored templates; releases counted by kind

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

A notification is one message an application asks for: its address and rendered text are kept
with it, so a release reads one row. Its id comes from the message sequence, so a gateway that
keys on the id (the idempotency key of the probe protocol) never confuses the two, and a later
receipt finds one row by id. notification_count follows statuses by trigger, as
campaign_progress does for messages, so stats never count a large table.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

NOTIFICATION_STATUSES = ('queued', 'sent', 'failed', 'expired', 'cancelled')
Timestamp = postgresql.TIMESTAMP(timezone=True)

# +1 for each row's new (channel, status), -1 for its old one, summed: unchanged rows cancel.
# Each counter is split over COUNT_SHARDS rows, picked by the backend's pid: concurrent accepts
# on other connections update other rows, instead of queueing on one row's lock until they
# commit. Readers sum the shards. Static SQL in each branch, so PL/pgSQL plans it once per
# connection: a single accepted notification must not pay for planning the trigger.
COUNT_SHARDS = 16
UPSERT = f"""
        INSERT INTO notification_count AS c (channel, status, shard, n)
        SELECT channel, status, pg_backend_pid() % {COUNT_SHARDS}, sum(n)
          FROM change
         GROUP BY channel, status
        HAVING sum(n) <> 0
         ORDER BY channel, status
        ON CONFLICT (channel, status, shard) DO UPDATE SET n = c.n + excluded.n;
"""
COUNT_FUNCTION = f"""
CREATE FUNCTION notification_counting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH change AS (SELECT channel, status, 1 AS n FROM new_rows)
        {UPSERT}
    ELSIF TG_OP = 'UPDATE' THEN
        WITH change AS (
            SELECT channel, status, 1 AS n FROM new_rows
            UNION ALL SELECT channel, status, -1 FROM old_rows
        )
        {UPSERT}
    ELSE
        WITH change AS (SELECT channel, status, -1 AS n FROM old_rows)
        {UPSERT}
    END IF;
    RETURN NULL;
END
$$
"""


def _check(values: tuple[str, ...]) -> str:
    return 'status IN (' + ', '.join(f"'{v}'" for v in values) + ')'


def upgrade() -> None:
    op.create_table(
        'template',
        sa.Column('name', sa.String(100), primary_key=True),
        sa.Column('channel', sa.String(16), nullable=False),
        sa.Column('subject', sa.Text()),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('html', sa.Text()),
        sa.Column('created_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('name', name='pk_template'),
    )
    op.add_column(
        'campaign',
        sa.Column(
            'template',
            sa.String(100),
            sa.ForeignKey('template.name', ondelete='SET NULL', name='fk_campaign_template_template'),
        ),
    )
    op.create_table(
        'notification',
        sa.Column(
            'id', sa.BigInteger(), server_default=sa.text("nextval('message_id_seq')"),
            nullable=False,
        ),
        sa.Column('channel', sa.String(16), nullable=False),
        sa.Column(
            'client_id', sa.BigInteger(),
            sa.ForeignKey('client.id', ondelete='SET NULL', name='fk_notification_client_id_client'),
        ),
        sa.Column('address', sa.Text(), nullable=False),
        sa.Column('subject', sa.Text()),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('html', sa.Text()),
        sa.Column(
            'template', sa.String(100),
            sa.ForeignKey('template.name', ondelete='SET NULL', name='fk_notification_template_template'),
        ),
        sa.Column('status', sa.String(16), server_default=sa.text("'queued'"), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('last_error', sa.Text()),
        sa.Column('not_before', Timestamp),
        sa.Column('expires_at', Timestamp, nullable=False),
        sa.Column('released_at', Timestamp),
        sa.Column('idempotency_key', sa.String(255)),
        sa.Column('request_hash', sa.String(64)),
        sa.Column('created_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column('sent_at', Timestamp),
        sa.PrimaryKeyConstraint('id', name='pk_notification'),
        sa.CheckConstraint(_check(NOTIFICATION_STATUSES), name=op.f('ck_notification_status')),
    )
    # What the releaser probes: queued, not yet released, by channel and due time.
    op.execute(
        "CREATE INDEX ix_notification_due ON notification"
        " (channel, coalesce(not_before, '-infinity'::timestamptz), id)"
        " WHERE status = 'queued' AND released_at IS NULL"
    )
    op.execute(
        'CREATE UNIQUE INDEX uq_notification_idempotency_key ON notification (idempotency_key)'
        ' WHERE idempotency_key IS NOT NULL'
    )
    op.create_index('ix_notification_status_id', 'notification', ['status', 'id'])
    op.create_index('ix_notification_client_id', 'notification', ['client_id'])
    op.create_table(
        'notification_count',
        sa.Column('channel', sa.String(16), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('shard', sa.SmallInteger(), nullable=False),
        sa.Column('n', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.PrimaryKeyConstraint('channel', 'status', 'shard', name='pk_notification_count'),
    )
    op.execute(COUNT_FUNCTION)
    op.execute(
        'CREATE TRIGGER notification_count_insert AFTER INSERT ON notification'
        ' REFERENCING NEW TABLE AS new_rows'
        ' FOR EACH STATEMENT EXECUTE FUNCTION notification_counting()'
    )
    op.execute(
        'CREATE TRIGGER notification_count_update AFTER UPDATE ON notification'
        ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
        ' FOR EACH STATEMENT EXECUTE FUNCTION notification_counting()'
    )
    op.execute(
        'CREATE TRIGGER notification_count_delete AFTER DELETE ON notification'
        ' REFERENCING OLD TABLE AS old_rows'
        ' FOR EACH STATEMENT EXECUTE FUNCTION notification_counting()'
    )
    # Notifications released count against the channel's ceilings beside campaign messages;
    # they take their share first, so the per-second check needs them apart.
    op.add_column(
        'channel_release',
        sa.Column('kind', sa.String(16), server_default=sa.text("'campaign'"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column('channel_release', 'kind')
    op.drop_table('notification')
    op.execute('DROP FUNCTION notification_counting()')
    op.drop_table('notification_count')
    op.drop_column('campaign', 'template')
    op.drop_table('template')
