"""Workers bound dramatiq's idle-queue back-off by the settings' QUEUE_POLL_MAX_MS, and close what
their actors opened when they stop."""

from __future__ import annotations

import asyncio
import time

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from shared.queue.broker import close_on_shutdown, create_worker
from shared.settings import Settings


def test_the_back_off_bound_comes_from_the_settings() -> None:
    broker = StubBroker()
    broker.declare_queue("classify")
    worker = create_worker(broker, Settings(_env_file=None, queue_poll_max_ms=40), threads=1, queues={"classify"})
    try:
        worker.start()
        consumers = list(worker.consumers.values())
        assert consumers and all(c.worker_timeout == 40 for c in consumers)
        assert worker.worker_timeout == 40
    finally:
        worker.stop()
        broker.close()


def test_the_default_bound_is_well_under_dramatiqs_second() -> None:
    assert Settings(_env_file=None).queue_poll_max_ms <= 250


class Pool:
    """Stands for a database pool or a Bot session: opened on the worker's event loop."""

    def __init__(self) -> None:
        self.opened_on: asyncio.AbstractEventLoop | None = None
        self.closed_on: asyncio.AbstractEventLoop | None = None

    async def close(self) -> None:
        self.closed_on = asyncio.get_running_loop()


def test_a_stopping_worker_closes_what_its_actors_opened_after_the_messages_in_hand() -> None:
    broker = StubBroker()
    broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    pool, failing, finished = Pool(), Pool(), []

    async def broken_close() -> None:
        raise ConnectionError("already gone")

    failing.close = broken_close  # type: ignore[method-assign]

    async def job() -> None:
        pool.opened_on = asyncio.get_running_loop()
        await asyncio.sleep(0.3)  # still in hand when the stop begins
        finished.append(pool.closed_on)

    dramatiq.actor(job, broker=broker, actor_name="job", queue_name="jobs")
    close_on_shutdown(broker, failing, pool)  # one failing close does not keep the next from running
    worker = create_worker(broker, Settings(_env_file=None), threads=1)
    worker.start()
    broker.actors["job"].send()
    while pool.opened_on is None:
        time.sleep(0.005)
    worker.stop()
    broker.close()
    assert finished == [None]  # the message in hand finished before anything was closed
    assert pool.closed_on is pool.opened_on  # closed on the loop it was opened on
