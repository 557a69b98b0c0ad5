"""deliberation (议事四步法): topics, timeline, supports, comments, meetings, votes and ballots, actions, ratings

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 23:20:35.883221
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delib_residences',
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('compound', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_delib_residences_user'),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('delib_topics',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('compound', sa.String(length=64), nullable=True),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('photos', sa.JSON(), nullable=False),
    sa.Column('proposer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('flagged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report', sa.Text(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name='fk_delib_topics_community'),
    sa.ForeignKeyConstraint(['proposer_id'], ['users.id'], name='fk_delib_topics_proposer'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name='fk_delib_topics_request'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', name='uq_delib_topics_request')
    )
    with op.batch_alter_table('delib_topics', schema=None) as batch_op:
        batch_op.create_index('ix_delib_topics_community_stage', ['community_code', 'stage'], unique=False)
        batch_op.create_index(batch_op.f('ix_delib_topics_proposer_id'), ['proposer_id'], unique=False)

    op.create_table('delib_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('topic_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('owner', sa.String(length=60), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('task_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('progress', sa.Integer(), server_default='0', nullable=False),
    sa.Column('overdue_alerted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name='fk_delib_actions_creator'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name='fk_delib_actions_task'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name='fk_delib_actions_request'),
    sa.ForeignKeyConstraint(['topic_id'], ['delib_topics.id'], name='fk_delib_actions_topic'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('delib_actions', schema=None) as batch_op:
        batch_op.create_index('ix_delib_actions_status_due', ['status', 'due_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_delib_actions_topic_id'), ['topic_id'], unique=False)

    op.create_table('delib_comments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('topic_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('hidden_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hidden_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('hide_reason', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['hidden_by'], ['users.id'], name='fk_delib_comments_hidden_by'),
    sa.ForeignKeyConstraint(['topic_id'], ['delib_topics.id'], name='fk_delib_comments_topic'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_delib_comments_user'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key', name='uq_delib_comments_key')
    )
    with op.batch_alter_table('delib_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delib_comments_topic_id'), ['topic_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_delib_comments_user_id'), ['user_id'], unique=False)

    op.create_table('delib_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('topic_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['topic_id'], ['delib_topics.id'], name='fk_delib_events_topic'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('delib_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delib_events_topic_id'), ['topic_id'], unique=False)

    op.create_table('delib_meetings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('topic_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('place', sa.String(length=100), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name='fk_delib_meetings_creator'),
    sa.ForeignKeyConstraint(['topic_id'], ['delib_topics.id'], name='fk_delib_meetings_topic'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('delib_meetings', schema=None) as batch_op:
        batch_op.create_index('ix_delib_meetings_reminded_starts', ['reminded_at', 'starts_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_delib_meetings_topic_id'), ['topic_id'], unique=False)

    op.create_table('delib_ratings',
    sa.Column('topic_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['topic_id'], ['delib_topics.id'], name='fk_delib_ratings_topic'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_delib_ratings_user'),
    sa.PrimaryKeyConstraint('topic_id', 'user_id')
    )
    op.create_table('delib_supports',
    sa.Column('topic_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['topic_id'], ['delib_topics.id'], name='fk_delib_supports_topic'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_delib_supports_user'),
    sa.PrimaryKeyConstraint('topic_id', 'user_id')
    )
    op.create_table('delib_votes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('topic_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('compound', sa.String(length=64), nullable=True),
    sa.Column('secret', sa.Boolean(), nullable=False),
    sa.Column('quorum', sa.Integer(), nullable=False),
    sa.Column('closes_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name='fk_delib_votes_creator'),
    sa.ForeignKeyConstraint(['topic_id'], ['delib_topics.id'], name='fk_delib_votes_topic'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('delib_votes', schema=None) as batch_op:
        batch_op.create_index('ix_delib_votes_closed_closes', ['closed_at', 'closes_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_delib_votes_topic_id'), ['topic_id'], unique=False)

    op.create_table('delib_ballots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('vote_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('choice', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_delib_ballots_user'),
    sa.ForeignKeyConstraint(['vote_id'], ['delib_votes.id'], name='fk_delib_ballots_vote'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('vote_id', 'user_id', name='uq_delib_ballots_vote_user')
    )
    with op.batch_alter_table('delib_ballots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delib_ballots_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('delib_ballots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delib_ballots_user_id'))

    op.drop_table('delib_ballots')
    with op.batch_alter_table('delib_votes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delib_votes_topic_id'))
        batch_op.drop_index('ix_delib_votes_closed_closes')

    op.drop_table('delib_votes')
    op.drop_table('delib_supports')
    op.drop_table('delib_ratings')
    with op.batch_alter_table('delib_meetings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delib_meetings_topic_id'))
        batch_op.drop_index('ix_delib_meetings_reminded_starts')

    op.drop_table('delib_meetings')
    with op.batch_alter_table('delib_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delib_events_topic_id'))

    op.drop_table('delib_events')
    with op.batch_alter_table('delib_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delib_comments_user_id'))
        batch_op.drop_index(batch_op.f('ix_delib_comments_topic_id'))

    op.drop_table('delib_comments')
    with op.batch_alter_table('delib_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delib_actions_topic_id'))
        batch_op.drop_index('ix_delib_actions_status_due')

    op.drop_table('delib_actions')
    with op.batch_alter_table('delib_topics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delib_topics_proposer_id'))
        batch_op.drop_index('ix_delib_topics_community_stage')

    op.drop_table('delib_topics')
    op.drop_table('delib_residences')
