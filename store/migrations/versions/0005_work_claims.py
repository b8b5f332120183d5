"""work claims: mailbox work items and outbox claims, so several workers can share one database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 23:25:00

Written by hand. `work_item` holds one row per message a worker listed in the mailbox;
workers claim rows (on PostgreSQL with SELECT ... FOR UPDATE SKIP LOCKED) until
`claimed_until`, so a killed worker's claims lapse and another worker takes them.
The outbox gets the same two claim columns, so no reply leaves twice. `outbox.purpose`
grows to 80 characters: PostgreSQL, unlike SQLite, refuses a longer value, and
"professional_outcome_school_to_school_support" is 45.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('work_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('folder', sa.String(length=255), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('claimed_by', sa.String(length=255), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('listed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'folder', 'uidvalidity', 'uid', name='uq_work_item_message')
    )
    op.create_index('ix_work_item_claimable', 'work_item', ['status', 'source', 'folder', 'uidvalidity'])

    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(length=255), nullable=False, server_default=''))
        batch.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch.alter_column('purpose', existing_type=sa.String(length=40), type_=sa.String(length=80),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.alter_column('purpose', existing_type=sa.String(length=80), type_=sa.String(length=40),
                           existing_nullable=False)
        batch.drop_column('claimed_until')
        batch.drop_column('claimed_by')
    op.drop_index('ix_work_item_claimable', table_name='work_item')
    op.drop_table('work_item')
