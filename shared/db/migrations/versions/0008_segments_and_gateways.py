"""SMS segments and gateways: what each message was billed as, and which gateway took it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Both are written with the outcome that says the message was sent, in the same UPDATE, so
they cost no row version of their own. NULL until then, and for e-mail (no segments).
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TABLES = ('message', 'notification')
GATEWAY_NAME_CHARS = 64


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column('segments', sa.SmallInteger(), nullable=True))
        op.add_column(
            table, sa.Column('gateway', sa.String(GATEWAY_NAME_CHARS), nullable=True)
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, 'gateway')
        op.drop_column(table, 'segments')
