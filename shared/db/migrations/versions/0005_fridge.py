"""shared fridge: items, takes, subscriptions, shifts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 15:02:31.022082
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fridge_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('fridge_code', sa.String(length=32), nullable=False),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('donor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('remaining', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('best_before', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('slot_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('slot_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refuse_reason', sa.String(length=16), nullable=True),
    sa.Column('handled_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('alerted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expiry_announced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('flagged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name='fk_fridge_items_community'),
    sa.ForeignKeyConstraint(['donor_id'], ['users.id'], name='fk_fridge_items_donor'),
    sa.ForeignKeyConstraint(['handled_by'], ['users.id'], name='fk_fridge_items_handler'),
    sa.PrimaryKeyConstraint('id', name='pk_fridge_items'),
    sa.UniqueConstraint('code', name='uq_fridge_items_code')
    )
    with op.batch_alter_table('fridge_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fridge_items_donor_id'), ['donor_id'], unique=False)
        batch_op.create_index('ix_fridge_items_fridge_status', ['fridge_code', 'status'], unique=False)
        batch_op.create_index('ix_fridge_items_status_best_before', ['status', 'best_before'], unique=False)

    op.create_table('fridge_subscriptions',
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fridge_code', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_fridge_subscriptions_user'),
    sa.PrimaryKeyConstraint('user_id', 'fridge_code', name='pk_fridge_subscriptions')
    )
    with op.batch_alter_table('fridge_subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_fridge_subscriptions_fridge', ['fridge_code'], unique=False)

    op.create_table('fridge_takes',
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('fridge_code', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['fridge_items.id'], name='fk_fridge_takes_item'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_fridge_takes_user'),
    sa.PrimaryKeyConstraint('item_id', 'user_id', 'day', name='pk_fridge_takes')
    )
    with op.batch_alter_table('fridge_takes', schema=None) as batch_op:
        batch_op.create_index('ix_fridge_takes_user_day', ['user_id', 'day'], unique=False)

    op.create_table('fridge_shifts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('fridge_code', sa.String(length=32), nullable=False),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('task_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('temperature', sa.Float(), nullable=True),
    sa.Column('cleaned', sa.Boolean(), nullable=True),
    sa.Column('expired_removed', sa.Boolean(), nullable=True),
    sa.Column('checked_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['checked_by'], ['users.id'], name='fk_fridge_shifts_checker'),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name='fk_fridge_shifts_community'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name='fk_fridge_shifts_task'),
    sa.PrimaryKeyConstraint('id', name='pk_fridge_shifts'),
    sa.UniqueConstraint('fridge_code', 'starts_at', name='uq_fridge_shifts_fridge_start')
    )
    with op.batch_alter_table('fridge_shifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fridge_shifts_task_id'), ['task_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('fridge_shifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fridge_shifts_task_id'))

    op.drop_table('fridge_shifts')
    with op.batch_alter_table('fridge_takes', schema=None) as batch_op:
        batch_op.drop_index('ix_fridge_takes_user_day')

    op.drop_table('fridge_takes')
    with op.batch_alter_table('fridge_subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_fridge_subscriptions_fridge')

    op.drop_table('fridge_subscriptions')
    with op.batch_alter_table('fridge_items', schema=None) as batch_op:
        batch_op.drop_index('ix_fridge_items_status_best_before')
        batch_op.drop_index('ix_fridge_items_fridge_status')
        batch_op.drop_index(batch_op.f('ix_fridge_items_donor_id'))

    op.drop_table('fridge_items')
