"""panel: meetings, attendance, decisions, actions, case clocks and agenda order

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 10:00:00

Written by hand, so that it holds only the panel tables and the new agenda_item columns.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agenda_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=40), nullable=False, server_default='queued'))
        batch_op.add_column(sa.Column('position', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('title', sa.String(length=200), nullable=False, server_default=''))

    op.create_table('panel_meeting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_date', sa.Date(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('location', sa.String(length=255), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('meeting_date')
    )

    op.create_table('panel_attendance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('organisation', sa.String(length=255), nullable=False),
    sa.Column('attended', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['panel_meeting.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('panel_attendance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_panel_attendance_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('panel_decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case_record.id'], ),
    sa.ForeignKeyConstraint(['meeting_id'], ['panel_meeting.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('meeting_id', 'case_id', name='uq_panel_decision_case')
    )
    with op.batch_alter_table('panel_decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_panel_decision_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_panel_decision_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('panel_action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.String(length=40), nullable=True),
    sa.Column('owner_email', sa.String(length=320), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('done_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updates', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case_record.id'], ),
    sa.ForeignKeyConstraint(['meeting_id'], ['panel_meeting.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('panel_action', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_panel_action_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_panel_action_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_panel_action_owner_email'), ['owner_email'], unique=False)
        batch_op.create_index(batch_op.f('ix_panel_action_status'), ['status'], unique=False)

    op.create_table('case_clock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('estimated', sa.Boolean(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=60), nullable=False),
    sa.Column('message_pk', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case_record.id'], ),
    sa.ForeignKeyConstraint(['message_pk'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'kind', name='uq_case_clock_kind')
    )
    with op.batch_alter_table('case_clock', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_clock_case_id'), ['case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_clock', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_clock_case_id'))
    op.drop_table('case_clock')

    with op.batch_alter_table('panel_action', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_panel_action_status'))
        batch_op.drop_index(batch_op.f('ix_panel_action_owner_email'))
        batch_op.drop_index(batch_op.f('ix_panel_action_meeting_id'))
        batch_op.drop_index(batch_op.f('ix_panel_action_case_id'))
    op.drop_table('panel_action')

    with op.batch_alter_table('panel_decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_panel_decision_meeting_id'))
        batch_op.drop_index(batch_op.f('ix_panel_decision_case_id'))
    op.drop_table('panel_decision')

    with op.batch_alter_table('panel_attendance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_panel_attendance_meeting_id'))
    op.drop_table('panel_attendance')

    op.drop_table('panel_meeting')

    with op.batch_alter_table('agenda_item', schema=None) as batch_op:
        batch_op.drop_column('title')
        batch_op.drop_column('position')
        batch_op.drop_column('reason')
