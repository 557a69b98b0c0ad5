"""Engine and session factory, the same for every service."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the bot, workers and scheduler share one file; busy_timeout waits for locks
    # instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _refuse_closed(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
    """Checkout check without a round trip: a connection the server closed or reset (a restart,
    a failover) is already marked closed by asyncpg, so the pool replaces it before anyone uses it.

    SQLAlchemy's `pool_pre_ping` would cost three round trips on every checkout with asyncpg
    (BEGIN, a ping, ROLLBACK); a connection that dies silently is instead caught by the first
    statement's error, which invalidates the whole pool (docs/performance.md, "claims").
    """
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("connection closed by the server")


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 10})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # A fixed pool: under a burst, waiting a moment for a pooled connection is far cheaper than
    # opening an overflow connection (a server process, authentication, an empty statement cache)
    # that is closed again as soon as it is returned.
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=30)
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
