"""Dialect-aware INSERT … ON CONFLICT, identical on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_of(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def insert_of(dialect: str, table: Any) -> Any:
    """`insert(table)` of a dialect, which offers `on_conflict_do_*` (for statements built once)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def insert_for(session: AsyncSession, table: Any) -> Any:
    """`insert(table)` of the session's dialect, which offers `on_conflict_do_*`."""
    return insert_of(dialect_of(session), table)
