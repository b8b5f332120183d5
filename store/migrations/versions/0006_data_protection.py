"""data protection: retention, erasure and encryption at rest

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:25:00

Written by hand.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The retention purge and erasure empty the stored bytes, so both raw columns become
    # nullable, and each purge step records when it ran on a row.
    with op.batch_alter_table('message') as batch_op:
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=True)
        batch_op.add_column(sa.Column('raw_purged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('details_purged_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=True)
        batch_op.add_column(sa.Column('body_purged_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # NOTE: a downgrade fails on a store that holds purged rows, because the raw columns
    # become NOT NULL again; the purged bytes cannot be brought back.
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.drop_column('body_purged_at')
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table('message') as batch_op:
        batch_op.drop_column('details_purged_at')
        batch_op.drop_column('raw_purged_at')
        batch_op.alter_column('raw', existing_type=sa.LargeBinary(), nullable=False)
