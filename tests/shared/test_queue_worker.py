"""Workers bound dramatiq's idle-queue back-off by the settings' QUEUE_POLL_MAX_MS."""

from __future__ import annotations

from dramatiq.brokers.stub import StubBroker

from shared.queue.broker import create_worker
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
