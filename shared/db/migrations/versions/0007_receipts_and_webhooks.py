"""Delivery receipts and webhooks: delivered/undelivered statuses, early receipts, events

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

`sent` stays the gateway's acceptance; a receipt moves a message or a notification on to
`delivered` or `undelivered`. A receipt may arrive before the sender's outcome is applied:
it waits in early_receipt and is applied with that outcome.

Webhook events are written by triggers, in the transaction that changes the status, so no
change goes untold whichever statement made it, and a change that rolls back tells nothing.
Message and notification events are grouped per subscription, up to EVENTS_PER_ROW in one
row: one row is one signed POST of a JSON array. Without an enabled subscription to the kind
of event, a trigger returns after one probe of the small webhook table.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

OLD_MESSAGE_STATUSES = ('pending', 'queued', 'sent', 'failed', 'expired', 'cancelled')
MESSAGE_STATUSES = OLD_MESSAGE_STATUSES + ('delivered', 'undelivered')
OLD_NOTIFICATION_STATUSES = ('queued', 'sent', 'failed', 'expired', 'cancelled')
NOTIFICATION_STATUSES = OLD_NOTIFICATION_STATUSES + ('delivered', 'undelivered')
EVENTS_PER_ROW = 500
Timestamp = postgresql.TIMESTAMP(timezone=True)

# As in 0005, with the two new statuses counted.
PROGRESS_FUNCTION = """
CREATE OR REPLACE FUNCTION message_progress() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes text := 'SELECT campaign_id, status, 1 AS n, sent_at FROM new_rows';
BEGIN
    IF TG_OP = 'UPDATE' THEN
        changes := changes
            || ' UNION ALL SELECT campaign_id, status, -1, NULL FROM old_rows';
    END IF;
    EXECUTE format($sql$
        WITH change AS (%s), delta AS (
            SELECT campaign_id,
                   sum(n) AS total,
                   sum(n) FILTER (WHERE status = 'pending') AS pending,
                   sum(n) FILTER (WHERE status = 'queued') AS queued,
                   sum(n) FILTER (WHERE status = 'sent') AS sent,
                   sum(n) FILTER (WHERE status = 'failed') AS failed,
                   sum(n) FILTER (WHERE status = 'expired') AS expired,
                   sum(n) FILTER (WHERE status = 'cancelled') AS cancelled,
                   sum(n) FILTER (WHERE status = 'delivered') AS delivered,
                   sum(n) FILTER (WHERE status = 'undelivered') AS undelivered,
                   min(sent_at) FILTER (WHERE n > 0 AND status = 'sent') AS first_sent,
                   max(sent_at) FILTER (WHERE n > 0 AND status = 'sent') AS last_sent
              FROM change
             GROUP BY campaign_id
        )
        UPDATE campaign_progress p
           SET total = p.total + %s,
               pending = p.pending + coalesce(d.pending, 0),
               queued = p.queued + coalesce(d.queued, 0),
               sent = p.sent + coalesce(d.sent, 0),
               failed = p.failed + coalesce(d.failed, 0),
               expired = p.expired + coalesce(d.expired, 0),
               cancelled = p.cancelled + coalesce(d.cancelled, 0),
               delivered = p.delivered + coalesce(d.delivered, 0),
               undelivered = p.undelivered + coalesce(d.undelivered, 0),
               first_sent_at = LEAST(p.first_sent_at, d.first_sent),
               last_sent_at = GREATEST(p.last_sent_at, d.last_sent)
          FROM delta d
         WHERE p.campaign_id = d.campaign_id
           AND (d.total <> 0 OR d.pending <> 0 OR d.queued <> 0 OR d.sent <> 0
                OR d.failed <> 0 OR d.expired <> 0 OR d.cancelled <> 0
                OR d.delivered <> 0 OR d.undelivered <> 0
                OR d.first_sent IS NOT NULL)
    $sql$, changes, CASE WHEN TG_OP = 'INSERT' THEN 'd.total' ELSE '0' END);
    RETURN NULL;
END
$$
"""

TOLD_STATUSES = ('sent', 'failed', 'delivered', 'undelivered')


def _events_function(table: str, data: str) -> str:
    """The statement trigger telling `table`'s status changes as `<table>.<status>` events.

    One JSON array per subscription and per EVENTS_PER_ROW changed rows: a statement
    applying 5,000 outcomes writes ten rows per subscriber, not 5,000. `data` lists the
    jsonb_build_object pairs of each event's data, read from the new row `n`.
    """
    types = ', '.join(f"'{table}.{status}'" for status in TOLD_STATUSES)
    statuses = ', '.join(f"'{status}'" for status in TOLD_STATUSES)
    return f"""
CREATE FUNCTION {table}_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook WHERE enabled AND events && ARRAY[{types}]) THEN
        RETURN NULL;
    END IF;
    WITH changed AS (
        SELECT '{table}.' || n.status AS type,
               jsonb_build_object(
                   'type', '{table}.' || n.status,
                   'timestamp', now(),
                   'data', jsonb_build_object({data})) AS event,
               row_number() OVER (ORDER BY n.id) AS rn
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE n.status <> o.status AND n.status IN ({statuses})
    )
    INSERT INTO webhook_event (webhook_id, payload, events)
    SELECT w.id, jsonb_agg(c.event ORDER BY c.rn), count(*)
      FROM changed c JOIN webhook w ON w.enabled AND c.type = ANY(w.events)
     GROUP BY w.id, (c.rn - 1) / {EVENTS_PER_ROW};
    RETURN NULL;
END
$$
"""


MESSAGE_EVENTS_FUNCTION = _events_function(
    'message',
    "'id', n.id, 'campaign_id', n.campaign_id, 'client_id', n.client_id,"
    " 'status', n.status, 'attempts', n.attempts, 'error', n.last_error,"
    " 'sent_at', n.sent_at, 'delivered_at', n.delivered_at",
)
NOTIFICATION_EVENTS_FUNCTION = _events_function(
    'notification',
    "'id', n.id, 'channel', n.channel, 'client_id', n.client_id, 'template', n.template,"
    " 'status', n.status, 'attempts', n.attempts, 'error', n.last_error,"
    " 'created_at', n.created_at, 'sent_at', n.sent_at, 'delivered_at', n.delivered_at",
)

# Campaigns change status a handful of times in their life: a row trigger, one event each.
CAMPAIGN_EVENTS_FUNCTION = """
CREATE FUNCTION campaign_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE
        WHEN NEW.status = 'running' AND OLD.status = 'scheduled' THEN 'campaign.started'
        WHEN NEW.status IN ('completed', 'cancelled', 'expired') THEN 'campaign.' || NEW.status
    END;
BEGIN
    IF kind IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_event (webhook_id, payload, events)
    SELECT w.id,
           jsonb_build_array(jsonb_build_object(
               'type', kind,
               'timestamp', now(),
               'data', jsonb_build_object(
                   'id', NEW.id, 'name', NEW.name, 'channel', NEW.channel,
                   'status', NEW.status, 'started_at', NEW.started_at,
                   'finished_at', NEW.finished_at,
                   'progress', (SELECT jsonb_build_object(
                                    'total', p.total, 'sent', p.sent, 'failed', p.failed,
                                    'expired', p.expired, 'cancelled', p.cancelled,
                                    'delivered', p.delivered, 'undelivered', p.undelivered)
                                  FROM campaign_progress p WHERE p.campaign_id = NEW.id)))),
           1
      FROM webhook w
     WHERE w.enabled AND kind = ANY(w.events);
    RETURN NULL;
END
$$
"""


def _check(values: tuple[str, ...]) -> str:
    return 'status IN (' + ', '.join(f"'{v}'" for v in values) + ')'


def upgrade() -> None:
    op.drop_constraint('ck_message_status', 'message', type_='check')
    op.create_check_constraint('ck_message_status', 'message', _check(MESSAGE_STATUSES))
    op.drop_constraint(op.f('ck_notification_status'), 'notification', type_='check')
    op.create_check_constraint(
        op.f('ck_notification_status'), 'notification', _check(NOTIFICATION_STATUSES)
    )
    # When the receipt says it reached the handset or the inbox (or failed to).
    op.add_column('message', sa.Column('delivered_at', Timestamp))
    op.add_column('notification', sa.Column('delivered_at', Timestamp))
    for column in ('delivered', 'undelivered'):
        op.add_column(
            'campaign_progress',
            sa.Column(column, sa.Integer(), server_default=sa.text('0'), nullable=False),
        )
    op.execute(PROGRESS_FUNCTION)

    op.create_table(
        'early_receipt',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('error', sa.Text()),
        sa.Column('at', Timestamp, nullable=False),
        # An e-mail bounce or complaint: the client is opted out of e-mail when applied.
        sa.Column('opt_out', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        sa.Column('received_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_early_receipt'),
        sa.CheckConstraint(
            "status IN ('delivered', 'undelivered')", name=op.f('ck_early_receipt_status')
        ),
    )
    op.create_index('ix_early_receipt_received_at', 'early_receipt', ['received_at'])

    op.create_table(
        'webhook',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('events', postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column('secret', sa.Text(), nullable=False),
        sa.Column('description', sa.Text()),
        sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        # Set at the first failed attempt since the last success; 24 hours of it disables.
        sa.Column('failing_since', Timestamp),
        sa.Column('disabled_at', Timestamp),
        sa.Column('disabled_reason', sa.Text()),
        sa.Column('created_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column('updated_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_webhook'),
    )
    op.create_table(
        'webhook_event',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            'webhook_id', sa.BigInteger(),
            sa.ForeignKey('webhook.id', ondelete='CASCADE', name='fk_webhook_event_webhook_id_webhook'),
            nullable=False,
        ),
        # The POST body: a JSON array of {type, timestamp, data}.
        sa.Column('payload', postgresql.JSONB(), nullable=False),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.Column('created_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column('next_attempt_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('last_error', sa.Text()),
        sa.Column('delivered_at', Timestamp),
        sa.Column('given_up_at', Timestamp),
        sa.PrimaryKeyConstraint('id', name='pk_webhook_event'),
    )
    # What the deliverer probes: events still owed, per subscription, oldest first.
    op.execute(
        'CREATE INDEX ix_webhook_event_owed ON webhook_event (webhook_id, next_attempt_at, id)'
        ' WHERE delivered_at IS NULL AND given_up_at IS NULL'
    )
    op.create_table(
        'webhook_attempt',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            'webhook_id', sa.BigInteger(),
            sa.ForeignKey('webhook.id', ondelete='CASCADE', name='fk_webhook_attempt_webhook_id_webhook'),
            nullable=False,
        ),
        sa.Column('event_id', sa.BigInteger(), nullable=False),
        sa.Column('attempted_at', Timestamp, server_default=sa.func.now(), nullable=False),
        sa.Column('status_code', sa.Integer()),
        sa.Column('latency_ms', sa.Float()),
        sa.Column('error', sa.Text()),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_webhook_attempt'),
    )
    op.create_index('ix_webhook_attempt_webhook_id_id', 'webhook_attempt', ['webhook_id', 'id'])

    op.execute(MESSAGE_EVENTS_FUNCTION)
    op.execute(NOTIFICATION_EVENTS_FUNCTION)
    op.execute(CAMPAIGN_EVENTS_FUNCTION)
    op.execute(
        'CREATE TRIGGER message_events AFTER UPDATE ON message'
        ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
        ' FOR EACH STATEMENT EXECUTE FUNCTION message_events()'
    )
    op.execute(
        'CREATE TRIGGER notification_events AFTER UPDATE ON notification'
        ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
        ' FOR EACH STATEMENT EXECUTE FUNCTION notification_events()'
    )
    op.execute(
        'CREATE TRIGGER campaign_events AFTER UPDATE OF status ON campaign'
        ' FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)'
        ' EXECUTE FUNCTION campaign_events()'
    )


def downgrade() -> None:
    op.execute('DROP TRIGGER campaign_events ON campaign')
    op.execute('DROP TRIGGER notification_events ON notification')
    op.execute('DROP TRIGGER message_events ON message')
    op.execute('DROP FUNCTION campaign_events()')
    op.execute('DROP FUNCTION notification_events()')
    op.execute('DROP FUNCTION message_events()')
    op.drop_table('webhook_attempt')
    op.drop_table('webhook_event')
    op.drop_table('webhook')
    op.drop_table('early_receipt')
    for column in ('undelivered', 'delivered'):
        op.drop_column('campaign_progress', column)
    op.drop_column('notification', 'delivered_at')
    op.drop_column('message', 'delivered_at')
    op.drop_constraint(op.f('ck_notification_status'), 'notification', type_='check')
    op.create_check_constraint(
        op.f('ck_notification_status'), 'notification', _check(OLD_NOTIFICATION_STATUSES)
    )
    op.drop_constraint('ck_message_status', 'message', type_='check')
    op.create_check_constraint('ck_message_status', 'message', _check(OLD_MESSAGE_STATUSES))
    # 0005's function: the same, without the two columns just dropped.
    op.execute('\n'.join(line for line in PROGRESS_FUNCTION.splitlines() if 'delivered' not in line))
