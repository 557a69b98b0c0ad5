"""mediation cases: parties, levels, sessions, notes, agreements, follow-up

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 23:22:46.881037
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mediation_cases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('opened_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('followup_due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('followup_stage', sa.Integer(), server_default='0', nullable=False),
    sa.Column('followup_asked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name='fk_mediation_cases_community'),
    sa.ForeignKeyConstraint(['lead_id'], ['users.id'], name='fk_mediation_cases_lead'),
    sa.ForeignKeyConstraint(['opened_by'], ['users.id'], name='fk_mediation_cases_opener'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name='fk_mediation_cases_request'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id')
    )
    with op.batch_alter_table('mediation_cases', schema=None) as batch_op:
        batch_op.create_index('ix_mediation_cases_community_status', ['community_code', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_mediation_cases_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index('ix_mediation_cases_status_followup', ['status', 'followup_due'], unique=False)

    op.create_table('mediation_agreements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('held', sa.Boolean(), nullable=True),
    sa.Column('proposed_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['mediation_cases.id'], name='fk_mediation_agreements_case'),
    sa.ForeignKeyConstraint(['proposed_by'], ['users.id'], name='fk_mediation_agreements_proposer'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mediation_agreements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mediation_agreements_case_id'), ['case_id'], unique=False)

    op.create_table('mediation_mediators',
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['mediation_cases.id'], name='fk_mediation_mediators_case'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_mediation_mediators_user'),
    sa.PrimaryKeyConstraint('case_id', 'user_id')
    )
    with op.batch_alter_table('mediation_mediators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mediation_mediators_user_id'), ['user_id'], unique=False)

    op.create_table('mediation_parties',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('side', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('invite_hash', sa.String(length=64), nullable=True),
    sa.Column('invite_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['mediation_cases.id'], name='fk_mediation_parties_case'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name='fk_mediation_parties_creator'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_mediation_parties_user'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'side', name='uq_mediation_parties_case_side'),
    sa.UniqueConstraint('case_id', 'user_id', name='uq_mediation_parties_case_user'),
    sa.UniqueConstraint('invite_hash')
    )
    with op.batch_alter_table('mediation_parties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mediation_parties_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mediation_parties_user_id'), ['user_id'], unique=False)

    op.create_table('mediation_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reminder_stage', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('held_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['mediation_cases.id'], name='fk_mediation_sessions_case'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name='fk_mediation_sessions_creator'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mediation_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mediation_sessions_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_mediation_sessions_status_start', ['status', 'starts_at'], unique=False)

    op.create_table('mediation_stages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['mediation_cases.id'], name='fk_mediation_stages_case'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mediation_stages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mediation_stages_case_id'), ['case_id'], unique=False)

    op.create_table('mediation_answers',
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('party_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('answer', sa.Boolean(), nullable=False),
    sa.Column('recorded_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['mediation_agreements.id'], name='fk_mediation_answers_agreement'),
    sa.ForeignKeyConstraint(['party_id'], ['mediation_parties.id'], name='fk_mediation_answers_party'),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], name='fk_mediation_answers_recorder'),
    sa.PrimaryKeyConstraint('agreement_id', 'party_id', 'kind')
    )
    op.create_table('mediation_attendance',
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('party_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.Column('recorded_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['party_id'], ['mediation_parties.id'], name='fk_mediation_attendance_party'),
    sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], name='fk_mediation_attendance_recorder'),
    sa.ForeignKeyConstraint(['session_id'], ['mediation_sessions.id'], name='fk_mediation_attendance_session'),
    sa.PrimaryKeyConstraint('session_id', 'party_id')
    )
    op.create_table('mediation_notes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('author_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('party_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name='fk_mediation_notes_author'),
    sa.ForeignKeyConstraint(['case_id'], ['mediation_cases.id'], name='fk_mediation_notes_case'),
    sa.ForeignKeyConstraint(['party_id'], ['mediation_parties.id'], name='fk_mediation_notes_party'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('mediation_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mediation_notes_case_id'), ['case_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('mediation_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mediation_notes_case_id'))

    op.drop_table('mediation_notes')
    op.drop_table('mediation_attendance')
    op.drop_table('mediation_answers')
    with op.batch_alter_table('mediation_stages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mediation_stages_case_id'))

    op.drop_table('mediation_stages')
    with op.batch_alter_table('mediation_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_mediation_sessions_status_start')
        batch_op.drop_index(batch_op.f('ix_mediation_sessions_case_id'))

    op.drop_table('mediation_sessions')
    with op.batch_alter_table('mediation_parties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mediation_parties_user_id'))
        batch_op.drop_index(batch_op.f('ix_mediation_parties_case_id'))

    op.drop_table('mediation_parties')
    with op.batch_alter_table('mediation_mediators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mediation_mediators_user_id'))

    op.drop_table('mediation_mediators')
    with op.batch_alter_table('mediation_agreements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mediation_agreements_case_id'))

    op.drop_table('mediation_agreements')
    with op.batch_alter_table('mediation_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_mediation_cases_status_followup')
        batch_op.drop_index(batch_op.f('ix_mediation_cases_lead_id'))
        batch_op.drop_index('ix_mediation_cases_community_status')

    op.drop_table('mediation_cases')
