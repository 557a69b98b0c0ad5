"""staff dashboard: login codes, sessions, once-only form submissions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 23:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('staff_login_codes',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('challenge', sa.String(length=64), nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_staff_login_codes_user'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('challenge', name='uq_staff_login_codes_challenge')
    )
    op.create_index('ix_staff_login_codes_user_created', 'staff_login_codes', ['user_id', 'created_at'], unique=False)

    op.create_table('staff_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_staff_sessions_user'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('ix_staff_sessions_user_id', 'staff_sessions', ['user_id'], unique=False)

    op.create_table('staff_submissions',
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_staff_submissions_user'),
    sa.PrimaryKeyConstraint('nonce')
    )


def downgrade() -> None:
    op.drop_table('staff_submissions')
    op.drop_index('ix_staff_sessions_user_id', table_name='staff_sessions')
    op.drop_table('staff_sessions')
    op.drop_index('ix_staff_login_codes_user_created', table_name='staff_login_codes')
    op.drop_table('staff_login_codes')
