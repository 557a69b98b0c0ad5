"""book house: postings-list search index, volunteer shifts, seedlings and their exchanges

Replaces the one-row-per-(gram, book) table `book_grams` with `book_postings` (one row per house and
gram holding the ids as a packed list), rebuilt here from the books that are still searchable.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 23:40:00
"""
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('book_postings',
    sa.Column('house_code', sa.String(length=32), nullable=False),
    sa.Column('gram', sa.String(length=8), nullable=False),
    sa.Column('ids', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('house_code', 'gram')
    )
    _rebuild_postings()
    with op.batch_alter_table('book_grams', schema=None) as batch_op:
        batch_op.drop_index('ix_book_grams_book')
    op.drop_table('book_grams')

    op.create_table('book_shifts',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('house_code', sa.String(length=32), nullable=False),
    sa.Column('community_code', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('task_id', BigId, nullable=True),
    sa.ForeignKeyConstraint(['community_code'], ['communities.code'], name='fk_book_shifts_community'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name='fk_book_shifts_task'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('house_code', 'starts_at', name='uq_book_shifts_house_start')
    )
    with op.batch_alter_table('book_shifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_book_shifts_task_id'), ['task_id'], unique=False)

    op.create_table('book_seedlings',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('house_code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('cost', sa.Integer(), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=False),
    sa.Column('updated_by', BigId, nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name='fk_book_seedlings_updated_by'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('house_code', 'name', name='uq_book_seedlings_house_name')
    )

    op.create_table('book_seedling_swaps',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('house_code', sa.String(length=32), nullable=False),
    sa.Column('swap_day', sa.Date(), nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('seedling_id', BigId, nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['seedling_id'], ['book_seedlings.id'], name='fk_book_seedling_swaps_seedling'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_book_seedling_swaps_user'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'house_code', 'swap_day', name='uq_book_seedling_swaps_user_day')
    )
    with op.batch_alter_table('book_seedling_swaps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_book_seedling_swaps_user_id'), ['user_id'], unique=False)

    # The hold sweep flips many statuses at once. Holds: partial indexes, so an ended hold keeps only
    # its primary key and (book, requester) entries. Books: status unindexed and pages left 30% free,
    # so its status changes are mostly HOT updates on PostgreSQL (no index writes at all).
    with op.batch_alter_table('book_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_book_holds_status_expires')
        batch_op.drop_index('ix_book_holds_book_status')
        batch_op.drop_index('ix_book_holds_requester_id')
    for name, columns, where in _HOLD_INDEXES:
        op.create_index(name, 'book_holds', columns, unique=False, postgresql_where=sa.text(where),
                        sqlite_where=sa.text(where))
    with op.batch_alter_table('books', schema=None) as batch_op:
        batch_op.drop_index('ix_books_house_status')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE books SET (fillfactor = 70)")
        op.execute("ALTER TABLE book_holds SET (fillfactor = 85)")


_HOLD_INDEXES = (
    ('ix_book_holds_lapsing', ['expires_at'], "status = 'held'"),
    ('ix_book_holds_holder', ['book_id'], "status = 'held'"),
    ('ix_book_holds_queue', ['book_id', 'queued_at', 'id'], "status = 'queued'"),
    ('ix_book_holds_requester_active', ['requester_id'], "status IN ('queued', 'held')"),
)


def _rebuild_postings() -> None:
    from shared.book_index import encode
    from shared.domain.books import grams

    bind = op.get_bind()
    lists: dict[tuple[str, str], list[int]] = defaultdict(list)
    for book_id, house_code, key in bind.execute(sa.text(
            "SELECT id, house_code, search_key FROM books WHERE status IN ('available', 'held') ORDER BY id")):
        for gram in grams(key):
            lists[(house_code, gram)].append(book_id)
    table = sa.table('book_postings', sa.column('house_code'), sa.column('gram'), sa.column('ids', sa.LargeBinary))
    rows = [{"house_code": h, "gram": g, "ids": encode(ids)} for (h, g), ids in lists.items()]
    for i in range(0, len(rows), 1000):
        bind.execute(table.insert(), rows[i : i + 1000])


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE books RESET (fillfactor)")
        op.execute("ALTER TABLE book_holds RESET (fillfactor)")
    with op.batch_alter_table('books', schema=None) as batch_op:
        batch_op.create_index('ix_books_house_status', ['house_code', 'status'], unique=False)
    for name, _columns, _where in _HOLD_INDEXES:
        op.drop_index(name, table_name='book_holds')
    with op.batch_alter_table('book_holds', schema=None) as batch_op:
        batch_op.create_index('ix_book_holds_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_book_holds_book_status', ['book_id', 'status'], unique=False)
        batch_op.create_index('ix_book_holds_requester_id', ['requester_id'], unique=False)
    with op.batch_alter_table('book_seedling_swaps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_book_seedling_swaps_user_id'))
    op.drop_table('book_seedling_swaps')
    op.drop_table('book_seedlings')
    with op.batch_alter_table('book_shifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_book_shifts_task_id'))
    op.drop_table('book_shifts')

    op.create_table('book_grams',
    sa.Column('gram', sa.String(length=8), nullable=False),
    sa.Column('book_id', BigId, nullable=False),
    sa.ForeignKeyConstraint(['book_id'], ['books.id'], name='fk_book_grams_book', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('gram', 'book_id')
    )
    with op.batch_alter_table('book_grams', schema=None) as batch_op:
        batch_op.create_index('ix_book_grams_book', ['book_id'], unique=False)
    from shared.book_index import decode

    bind = op.get_bind()
    table = sa.table('book_grams', sa.column('gram'), sa.column('book_id'))
    rows = [{"gram": gram, "book_id": int(i)} for gram, ids in bind.execute(sa.text("SELECT gram, ids FROM book_postings"))
            for i in decode(ids)]
    for i in range(0, len(rows), 1000):
        bind.execute(table.insert(), rows[i : i + 1000])
    op.drop_table('book_postings')
