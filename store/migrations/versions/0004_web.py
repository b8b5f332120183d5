"""web: accounts, sign-in attempts, audit log and corrections

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 23:20:00

Written by hand, so that it holds only the web app's tables.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('oidc_subject', sa.String(length=255), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username'),
    sa.UniqueConstraint('oidc_subject')
    )

    op.create_table('sign_in_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_sign_in_attempt_key', 'sign_in_attempt', ['key'])
    op.create_index('ix_sign_in_attempt_at', 'sign_in_attempt', ['at'])

    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('target_type', sa.String(length=40), nullable=False),
    sa.Column('target_id', sa.String(length=60), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_event_at', 'audit_event', ['at'])
    op.create_index('ix_audit_event_actor', 'audit_event', ['actor'])
    op.create_index('ix_audit_event_action', 'audit_event', ['action'])
    op.create_index('ix_audit_event_target_id', 'audit_event', ['target_id'])

    op.create_table('correction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('message_pk', sa.Integer(), nullable=True),
    sa.Column('bot_category', sa.String(length=40), nullable=False),
    sa.Column('field', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['message_pk'], ['message.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_correction_at', 'correction', ['at'])
    op.create_index('ix_correction_message_pk', 'correction', ['message_pk'])


def downgrade() -> None:
    op.drop_table('correction')
    op.drop_table('audit_event')
    op.drop_table('sign_in_attempt')
    op.drop_table('user_account')
