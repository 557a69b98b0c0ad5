"""Wait until an in-process pipeline is quiet: shared by the pipeline and Matrix fixtures.

Quiet means: no message left on (or being processed from) the broker's queues or their delay
queues, nothing in the worker's hands, no notification `pending` or `sending` and no request
still `received` in the database. Deliveries are enqueued by intake and postponed deliveries
are re-sent by a timer, so the queues are joined in rounds until the database agrees.
"""

from __future__ import annotations

import asyncio

import dramatiq
from sqlalchemy import func, select

from shared.db.models import OutboxMessage, Request
from shared.runtime import Database

QUEUES = ("jobs", "intake", "delivery")


async def in_flight(db: Database) -> int:
    """Notifications not yet sent (or failed) plus requests not yet classified."""
    async with db.sessions() as session:
        busy = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                    .where(OutboxMessage.status.in_(["pending", "sending"])))
        busy += await session.scalar(select(func.count()).select_from(Request).where(Request.status == "received"))
    return int(busy or 0)


async def drain(broker: dramatiq.Broker, worker: dramatiq.Worker, db: Database, *, timeout: float = 20.0,
                poll: float = 0.02) -> None:
    """Return once the pipeline is quiet; fail (AssertionError) if it is not within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await asyncio.to_thread(_join, broker, worker, int(timeout * 1000))
        busy = await in_flight(db)
        if not busy:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{busy} messages still in flight")
        await asyncio.sleep(poll)


def _join(broker: dramatiq.Broker, worker: dramatiq.Worker, timeout_ms: int) -> None:
    for _ in range(3):  # deliveries are enqueued by intake, so drain in rounds
        for queue in QUEUES:
            broker.declare_queue(queue)
            broker.join(queue, timeout=timeout_ms)
        worker.join()
