"""One broker factory for every service: Redis (default), RabbitMQ, or in-process.

Call `create_broker()` and `dramatiq.set_broker()` before any actor is declared;
our actors are declared by `register(broker)` functions, so import order cannot
bind them to the wrong broker.
"""

from __future__ import annotations

import logging
from typing import Protocol

import dramatiq
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from dramatiq.middleware.asyncio import AsyncIO

from shared.settings import Settings

log = logging.getLogger("linju.broker")


def redis_client(url: str) -> redis.Redis:
    """A redis-py client safe for dramatiq's blocking reads.

    redis-py 8 defaults to a 5 s socket timeout, which aborts BRPOPLPUSH-style
    waits; dramatiq needs no read timeout at all.
    """
    return redis.Redis.from_url(url, socket_timeout=None, socket_connect_timeout=5, health_check_interval=30)


def redis_answers(url: str | None) -> bool:
    if not url:
        return False
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def describe(broker: dramatiq.Broker) -> str:
    return type(broker).__name__


def create_broker(
    settings: Settings,
    *,
    allow_in_process: bool = False,
) -> dramatiq.Broker:
    """Build the configured broker.

    `allow_in_process` (only `linju run`) falls back to an in-process broker when
    Redis does not answer; separate processes cannot share that, so services
    started on their own refuse to fall back.
    """
    choice = settings.broker
    broker: dramatiq.Broker
    if choice == "stub":
        broker = StubBroker()
        broker.emit_after("process_boot")
        log.warning("queue: in-process broker (messages live only in this process)")
    elif choice == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=settings.rabbitmq_url)
        log.info("queue: RabbitMQ broker")
    elif redis_answers(settings.redis_url):
        from dramatiq.brokers.redis import RedisBroker

        assert settings.redis_url is not None
        broker = RedisBroker(
            client=redis_client(settings.redis_url),
            heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
            maintenance_chance=settings.broker_maintenance_chance,
        )
        log.info("queue: Redis broker")
    elif choice == "auto" and allow_in_process:
        broker = StubBroker()
        broker.emit_after("process_boot")
        log.warning("queue: Redis does not answer at REDIS_URL; using the IN-PROCESS broker (single process only)")
    else:
        raise RuntimeError("queue: Redis does not answer at REDIS_URL and no other broker is configured")
    broker.add_middleware(AsyncIO())
    return broker


def create_worker(broker: dramatiq.Broker, settings: Settings, *, threads: int,
                  queues: set[str] | None = None) -> dramatiq.Worker:
    """A dramatiq worker whose idle-queue back-off is bounded by `QUEUE_POLL_MAX_MS`."""
    return dramatiq.Worker(broker, worker_threads=threads, queues=queues, worker_timeout=settings.queue_poll_max_ms)


class Closable(Protocol):
    async def close(self) -> None: ...


class _CloseOnShutdown(Middleware):
    def __init__(self, resources: tuple[Closable, ...]) -> None:
        self.resources = resources

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            return
        for resource in self.resources:
            try:
                loop_thread.run_coroutine(resource.close())
            except Exception:  # closing is best effort: the process is going away anyway
                log.warning("closing a worker resource failed", exc_info=True)


def close_on_shutdown(broker: dramatiq.Broker, *resources: Closable) -> None:
    """Close what actors opened on the worker's event loop (database pools, Bot sessions, Redis
    clients) once the worker has stopped: after the messages in hand are finished, before
    dramatiq's AsyncIO middleware stops that loop (`after_*` hooks run in reverse order)."""
    broker.add_middleware(_CloseOnShutdown(resources), after=AsyncIO)
