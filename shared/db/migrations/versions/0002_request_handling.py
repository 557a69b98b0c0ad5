"""request handling

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 13:26:02.329479
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignee_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_stage', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('followup_stage', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('solved', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('rating', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_requests_assignee_id_users', 'users', ['assignee_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_constraint('fk_requests_assignee_id_users', type_='foreignkey')
        batch_op.drop_column('rating')
        batch_op.drop_column('solved')
        batch_op.drop_column('followup_stage')
        batch_op.drop_column('sla_stage')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('first_response_at')
        batch_op.drop_column('assignee_id')

