"""work claims: work claims for several workers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 23:25:00

Written by hand.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
