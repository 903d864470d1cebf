"""campaign_progress follows message statuses: one trigger moves every counter; CHECKed statuses

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Until now each statement that moved a message's status moved the counters by hand, nine times
over. The statement-level triggers below see every inserted or updated row at once (transition
tables), so a batch of 1,000 outcomes moves each campaign's counters in one UPDATE, and no
statement written later can forget them.
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

MESSAGE_STATUSES = ('pending', 'queued', 'sent', 'failed', 'expired', 'cancelled')
CAMPAIGN_STATUSES = ('scheduled', 'running', 'paused', 'cancelled', 'completed', 'expired')

# +1 for each row's new status, -1 for its old one (updates only), summed per campaign: rows
# whose status did not change cancel out. Dynamic SQL because an INSERT trigger has no old rows.
PROGRESS_FUNCTION = """
CREATE FUNCTION message_progress() RETURNS trigger LANGUAGE plpgsql AS $$
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
               first_sent_at = LEAST(p.first_sent_at, d.first_sent),
               last_sent_at = GREATEST(p.last_sent_at, d.last_sent)
          FROM delta d
         WHERE p.campaign_id = d.campaign_id
           AND (d.total <> 0 OR d.pending <> 0 OR d.queued <> 0 OR d.sent <> 0
                OR d.failed <> 0 OR d.expired <> 0 OR d.cancelled <> 0
                OR d.first_sent IS NOT NULL)
    $sql$, changes, CASE WHEN TG_OP = 'INSERT' THEN 'd.total' ELSE '0' END);
    RETURN NULL;
END
$$
"""


def _check(values: tuple[str, ...]) -> str:
    return 'status IN (' + ', '.join(f"'{v}'" for v in values) + ')'


def upgrade() -> None:
    op.create_check_constraint('ck_message_status', 'message', _check(MESSAGE_STATUSES))
    op.create_check_constraint('ck_campaign_status', 'campaign', _check(CAMPAIGN_STATUSES))
    op.execute(PROGRESS_FUNCTION)
    op.execute(
        'CREATE TRIGGER message_progress_insert AFTER INSERT ON message'
        ' REFERENCING NEW TABLE AS new_rows'
        ' FOR EACH STATEMENT EXECUTE FUNCTION message_progress()'
    )
    op.execute(
        'CREATE TRIGGER message_progress_update AFTER UPDATE ON message'
        ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
        ' FOR EACH STATEMENT EXECUTE FUNCTION message_progress()'
    )
    # Counters written by hand until now are recounted, so they start exact.
    op.execute(
        """
        UPDATE campaign_progress p
           SET total = coalesce(c.total, 0), pending = coalesce(c.pending, 0),
               queued = coalesce(c.queued, 0), sent = coalesce(c.sent, 0),
               failed = coalesce(c.failed, 0), expired = coalesce(c.expired, 0),
               cancelled = coalesce(c.cancelled, 0)
          FROM campaign k
          LEFT JOIN (
              SELECT campaign_id, count(*) AS total,
                     count(*) FILTER (WHERE status = 'pending') AS pending,
                     count(*) FILTER (WHERE status = 'queued') AS queued,
                     count(*) FILTER (WHERE status = 'sent') AS sent,
                     count(*) FILTER (WHERE status = 'failed') AS failed,
                     count(*) FILTER (WHERE status = 'expired') AS expired,
                     count(*) FILTER (WHERE status = 'cancelled') AS cancelled
                FROM message GROUP BY campaign_id
          ) c ON c.campaign_id = k.id
         WHERE p.campaign_id = k.id
        """
    )


def downgrade() -> None:
    op.execute('DROP TRIGGER message_progress_update ON message')
    op.execute('DROP TRIGGER message_progress_insert ON message')
    op.execute('DROP FUNCTION message_progress()')
    op.drop_constraint('ck_campaign_status', 'campaign', type_='check')
    op.drop_constraint('ck_message_status', 'message', type_='check')
