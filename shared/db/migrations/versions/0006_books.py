"""book exchange: books, search postings, holds, the points ledger, wish lists

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 15:10:26.006386
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('book_points',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_book_points_user'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'reason', 'ref', name='uq_book_points_user_reason_ref')
    )
    with op.batch_alter_table('book_points', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_book_points_user_id'), ['user_id'], unique=False)

    op.create_table('book_wishes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('house_code', sa.String(length=32), nullable=False),
    sa.Column('query', sa.String(length=120), nullable=False),
    sa.Column('search_key', sa.String(length=120), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_book_wishes_user'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('book_wishes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_book_wishes_user_id'), ['user_id'], unique=False)

    op.create_table('books',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('house_code', sa.String(length=32), nullable=False),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=True),
    sa.Column('isbn', sa.String(length=13), nullable=True),
    sa.Column('condition', sa.String(length=16), nullable=False),
    sa.Column('location', sa.String(length=8), nullable=False),
    sa.Column('photo_file_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('search_key', sa.Text(), nullable=False),
    sa.Column('wish_stage', sa.Integer(), server_default='0', nullable=False),
    sa.Column('given_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name='fk_books_community'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name='fk_books_owner'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('books', schema=None) as batch_op:
        batch_op.create_index('ix_books_house_status', ['house_code', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_books_isbn'), ['isbn'], unique=False)
        batch_op.create_index(batch_op.f('ix_books_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('ix_books_wish_stage', ['wish_stage'], unique=False)

    op.create_table('book_grams',
    sa.Column('gram', sa.String(length=8), nullable=False),
    sa.Column('book_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['books.id'], name='fk_book_grams_book', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('gram', 'book_id')
    )
    with op.batch_alter_table('book_grams', schema=None) as batch_op:
        batch_op.create_index('ix_book_grams_book', ['book_id'], unique=False)

    op.create_table('book_holds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('book_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('requester_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('round', sa.Integer(), server_default='1', nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handover_on', sa.Date(), nullable=True),
    sa.Column('handed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handed_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['books.id'], name='fk_book_holds_book'),
    sa.ForeignKeyConstraint(['handed_by'], ['users.id'], name='fk_book_holds_handed_by'),
    sa.ForeignKeyConstraint(['requester_id'], ['users.id'], name='fk_book_holds_requester'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('book_id', 'requester_id', name='uq_book_holds_book_requester')
    )
    with op.batch_alter_table('book_holds', schema=None) as batch_op:
        batch_op.create_index('ix_book_holds_book_status', ['book_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_book_holds_requester_id'), ['requester_id'], unique=False)
        batch_op.create_index('ix_book_holds_status_expires', ['status', 'expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('book_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_book_holds_status_expires')
        batch_op.drop_index(batch_op.f('ix_book_holds_requester_id'))
        batch_op.drop_index('ix_book_holds_book_status')

    op.drop_table('book_holds')
    with op.batch_alter_table('book_grams', schema=None) as batch_op:
        batch_op.drop_index('ix_book_grams_book')

    op.drop_table('book_grams')
    with op.batch_alter_table('books', schema=None) as batch_op:
        batch_op.drop_index('ix_books_wish_stage')
        batch_op.drop_index(batch_op.f('ix_books_owner_id'))
        batch_op.drop_index(batch_op.f('ix_books_isbn'))
        batch_op.drop_index('ix_books_house_status')

    op.drop_table('books')
    with op.batch_alter_table('book_wishes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_book_wishes_user_id'))

    op.drop_table('book_wishes')
    with op.batch_alter_table('book_points', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_book_points_user_id'))

    op.drop_table('book_points')
