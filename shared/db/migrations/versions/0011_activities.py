"""activities and enrolment: activities, sessions, children, enrolments, attendance, tutor hours

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 23:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NOW = sa.text('(CURRENT_TIMESTAMP)')


def upgrade() -> None:
    op.create_table('activities',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=32), nullable=True),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('title_en', sa.String(length=200), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('organiser_name', sa.String(length=100), nullable=True),
    sa.Column('organiser_id', BigId, nullable=True),
    sa.Column('audience', sa.String(length=16), nullable=False),
    sa.Column('age_min', sa.Integer(), nullable=True),
    sa.Column('age_max', sa.Integer(), nullable=True),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('fee', sa.Float(), nullable=False),
    sa.Column('enrol_opens_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('enrol_closes_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('open_to_all', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary_stage', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_by', BigId, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name='fk_activities_community'),
    sa.ForeignKeyConstraint(['organiser_id'], ['users.id'], name='fk_activities_organiser'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name='fk_activities_created_by'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code', name='uq_activities_code')
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index('ix_activities_community_status', ['community_code', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_organiser_id'), ['organiser_id'], unique=False)

    op.create_table('activity_sessions',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('activity_id', BigId, nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reminder_stage', sa.Integer(), server_default='0', nullable=False),
    sa.Column('held_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('marked_by', BigId, nullable=True),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name='fk_activity_sessions_activity'),
    sa.ForeignKeyConstraint(['marked_by'], ['users.id'], name='fk_activity_sessions_marked_by'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('activity_id', 'starts_at', name='uq_activity_sessions_activity_start')
    )
    with op.batch_alter_table('activity_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_activity_sessions_status_start', ['status', 'starts_at'], unique=False)

    op.create_table('activity_children',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('guardian_id', BigId, nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('age', sa.Integer(), nullable=False),
    sa.Column('school_class', sa.String(length=40), nullable=True),
    sa.Column('pickup', sa.JSON(), nullable=False),
    sa.Column('consent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    sa.ForeignKeyConstraint(['guardian_id'], ['users.id'], name='fk_activity_children_guardian'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('activity_children', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_children_guardian_id'), ['guardian_id'], unique=False)

    op.create_table('activity_enrolments',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('activity_id', BigId, nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('child_id', BigId, nullable=True),
    sa.Column('who', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queue_no', sa.Integer(), server_default='0', nullable=False),
    sa.Column('offer_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('round', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name='fk_activity_enrolments_activity'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_activity_enrolments_user'),
    sa.ForeignKeyConstraint(['child_id'], ['activity_children.id'], name='fk_activity_enrolments_child'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('activity_id', 'user_id', 'who', name='uq_activity_enrolments_who')
    )
    with op.batch_alter_table('activity_enrolments', schema=None) as batch_op:
        batch_op.create_index('ix_activity_enrolments_activity_status', ['activity_id', 'status'], unique=False)
        batch_op.create_index('ix_activity_enrolments_status_offer', ['status', 'offer_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_enrolments_user_id'), ['user_id'], unique=False)

    op.create_table('activity_attendance',
    sa.Column('session_id', BigId, nullable=False),
    sa.Column('enrolment_id', BigId, nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.Column('picked_up_by', sa.String(length=60), nullable=True),
    sa.Column('pickup_ok', sa.Boolean(), nullable=True),
    sa.Column('marked_by', BigId, nullable=True),
    sa.Column('marked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['activity_sessions.id'], name='fk_activity_attendance_session'),
    sa.ForeignKeyConstraint(['enrolment_id'], ['activity_enrolments.id'], name='fk_activity_attendance_enrolment'),
    sa.ForeignKeyConstraint(['marked_by'], ['users.id'], name='fk_activity_attendance_marked_by'),
    sa.PrimaryKeyConstraint('session_id', 'enrolment_id')
    )

    op.create_table('activity_tutor_hours',
    sa.Column('session_id', BigId, nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('task_id', BigId, nullable=False),
    sa.Column('hours', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['activity_sessions.id'], name='fk_activity_tutor_hours_session'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_activity_tutor_hours_user'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name='fk_activity_tutor_hours_task'),
    sa.PrimaryKeyConstraint('session_id', 'user_id')
    )


def downgrade() -> None:
    op.drop_table('activity_tutor_hours')
    op.drop_table('activity_attendance')
    with op.batch_alter_table('activity_enrolments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_enrolments_user_id'))
        batch_op.drop_index('ix_activity_enrolments_status_offer')
        batch_op.drop_index('ix_activity_enrolments_activity_status')
    op.drop_table('activity_enrolments')
    with op.batch_alter_table('activity_children', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_children_guardian_id'))
    op.drop_table('activity_children')
    with op.batch_alter_table('activity_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_sessions_status_start')
    op.drop_table('activity_sessions')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activities_organiser_id'))
        batch_op.drop_index('ix_activities_community_status')
    op.drop_table('activities')
