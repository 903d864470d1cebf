"""Messages partitioned by id range: old campaigns' rows leave by DROP TABLE, not DELETE

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

Ids come from one sequence, so an id range is a stretch of time: a partition holds the
messages materialised while its range was current, and once every campaign with rows in it is
finished and older than the retention, it is dropped whole (shared/db/queries/partitions.py).
The existing table becomes the first partition (ids below the sequence's next value) without
copying a row; the overflow partition catches any id outside the ranges made so far, so no
insert ever fails for want of a partition.

A partition's uniqueness can only include the partition key, so (campaign_id, client_id) is a
plain index now: materialisation inserts a campaign's recipients once, in one statement, in
the transaction that starts it. Each campaign keeps the id range its messages were given, so
its due probe and claim visit only the partitions that hold them, and what was dropped is
summed per gateway and per second of sending, so a campaign's figures outlive its rows.
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

FIRST_SPAN = 10_000_000
STATUS_CHECK = (
    "status IN ('pending', 'queued', 'sent', 'failed', 'expired', 'cancelled', 'delivered',"
    " 'undelivered')"
)
INDEXES = {
    'ix_message_campaign_id_status': '(campaign_id, status)',
    'ix_message_client_id': '(client_id)',
    'ix_message_campaign_id_sent_at': '(campaign_id, sent_at)',
    'ix_message_due': (
        "(campaign_id, coalesce(not_before, '-infinity'::timestamptz), id)"
        " WHERE status = 'pending'"
    ),
}
TRIGGERS = {
    'message_progress_insert': ('INSERT', 'REFERENCING NEW TABLE AS new_rows', 'message_progress'),
    'message_progress_update': (
        'UPDATE',
        'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows',
        'message_progress',
    ),
    'message_events': (
        'UPDATE',
        'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows',
        'message_events',
    ),
}


def _create_triggers() -> None:
    for name, (event, referencing, function) in TRIGGERS.items():
        op.execute(
            f'CREATE TRIGGER {name} AFTER {event} ON message {referencing}'
            f' FOR EACH STATEMENT EXECUTE FUNCTION {function}()'
        )


def _add_keys() -> None:
    """The message table's key, status check and foreign keys, partitioned or not."""
    op.execute('ALTER TABLE message ADD CONSTRAINT pk_message PRIMARY KEY (id)')
    op.execute(f'ALTER TABLE message ADD CONSTRAINT ck_message_ck_message_status CHECK ({STATUS_CHECK})')
    op.execute(
        'ALTER TABLE message ADD CONSTRAINT fk_message_campaign_id_campaign'
        ' FOREIGN KEY (campaign_id) REFERENCES campaign (id) ON DELETE CASCADE'
    )
    op.execute(
        'ALTER TABLE message ADD CONSTRAINT fk_message_client_id_client'
        ' FOREIGN KEY (client_id) REFERENCES client (id) ON DELETE SET NULL'
    )


def upgrade() -> None:
    # A partition may not carry triggers with transition tables: they move to the parent.
    for name in TRIGGERS:
        op.execute(f'DROP TRIGGER {name} ON message')
    for constraint in (
        'fk_message_campaign_id_campaign',
        'fk_message_client_id_client',
        'uq_message_campaign_id_client_id',
    ):
        op.execute(f'ALTER TABLE message DROP CONSTRAINT {constraint}')
    op.execute('ALTER TABLE message RENAME TO message_p0')
    op.execute('ALTER TABLE message_p0 RENAME CONSTRAINT pk_message TO pk_message_p0')
    for name in INDEXES:
        op.execute(f'ALTER INDEX {name} RENAME TO {name}_p0')

    op.execute(
        'CREATE TABLE message (LIKE message_p0 INCLUDING DEFAULTS) PARTITION BY RANGE (id)'
    )
    op.execute('ALTER SEQUENCE message_id_seq OWNED BY message.id')
    _add_keys()
    for name, columns in {
        **INDEXES,
        'ix_message_campaign_id_client_id': '(campaign_id, client_id)',
    }.items():
        op.execute(f'CREATE INDEX {name} ON message {columns}')
    op.execute('CREATE INDEX ix_message_campaign_id_client_id_p0 ON message_p0 (campaign_id, client_id)')

    # The old rows lie below the sequence's next value; the next range starts there.
    op.execute(
        f"""
        DO $$
        DECLARE
            next_id bigint;
        BEGIN
            SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END
              INTO next_id FROM message_id_seq;
            EXECUTE format(
                'ALTER TABLE message ATTACH PARTITION message_p0'
                ' FOR VALUES FROM (MINVALUE) TO (%s)', next_id);
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF message FOR VALUES FROM (%s) TO (%s)',
                'message_p' || next_id, next_id, next_id + {FIRST_SPAN});
        END
        $$
        """
    )
    op.execute('CREATE TABLE message_overflow PARTITION OF message DEFAULT')
    _create_triggers()

    op.add_column('campaign', sa.Column('first_message_id', sa.BigInteger(), nullable=True))
    op.add_column('campaign', sa.Column('last_message_id', sa.BigInteger(), nullable=True))
    op.add_column(
        'campaign',
        sa.Column('messages_dropped', sa.BigInteger(), nullable=False, server_default='0'),
    )
    op.execute(
        """
        UPDATE campaign k SET first_message_id = m.first, last_message_id = m.last
          FROM (SELECT campaign_id, min(id) AS first, max(id) AS last
                  FROM message GROUP BY campaign_id) m
         WHERE m.campaign_id = k.id
        """
    )
    op.create_table(
        'campaign_gateway_archive',
        sa.Column(
            'campaign_id',
            sa.BigInteger(),
            sa.ForeignKey('campaign.id', ondelete='CASCADE'),
            primary_key=True,
        ),
        # '' for messages sent before the gateway was recorded (a key may not be NULL).
        sa.Column('gateway', sa.String(64), primary_key=True),
        sa.Column('sent', sa.BigInteger(), nullable=False),
        sa.Column('delivered', sa.BigInteger(), nullable=False),
        sa.Column('undelivered', sa.BigInteger(), nullable=False),
        sa.Column('segments', sa.BigInteger(), nullable=False),
    )
    op.create_table(
        'campaign_sent_archive',
        sa.Column(
            'campaign_id',
            sa.BigInteger(),
            sa.ForeignKey('campaign.id', ondelete='CASCADE'),
            primary_key=True,
        ),
        sa.Column('second', sa.BigInteger(), primary_key=True),  # epoch seconds
        sa.Column('sent', sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('campaign_sent_archive')
    op.drop_table('campaign_gateway_archive')
    for column in ('messages_dropped', 'last_message_id', 'first_message_id'):
        op.drop_column('campaign', column)
    # Back to one table: every partition's rows move into a plain copy.
    op.execute('CREATE TABLE message_flat (LIKE message INCLUDING DEFAULTS)')
    op.execute('INSERT INTO message_flat SELECT * FROM message')
    op.execute('ALTER SEQUENCE message_id_seq OWNED BY message_flat.id')
    op.execute('DROP TABLE message CASCADE')
    op.execute('ALTER TABLE message_flat RENAME TO message')
    _add_keys()
    op.execute(
        'ALTER TABLE message ADD CONSTRAINT uq_message_campaign_id_client_id'
        ' UNIQUE (campaign_id, client_id)'
    )
    for name, columns in INDEXES.items():
        op.execute(f'CREATE INDEX {name} ON message {columns}')
    _create_triggers()
