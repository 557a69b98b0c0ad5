"""A delivery worker in a process of its own, for the cross-process test.

Like `linju deliver`, but on a Redis broker namespace the test chooses (so parallel
test runs on the same Redis database cannot take each other's messages):

    DATABASE_URL=… REDIS_URL=… TELEGRAM_API_BASE=… BROKER_NAMESPACE=… DELIVERY_SCALE=10 \
        python -m tests.delivery.worker_process
"""

from __future__ import annotations

import os
import signal
import threading

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from services.bot import delivery
from shared.queue.broker import close_on_shutdown, redis_client
from shared.settings import Settings


def main() -> None:
    settings = Settings(_env_file=None)
    assert settings.redis_url is not None
    broker = RedisBroker(client=redis_client(settings.redis_url), namespace=os.environ["BROKER_NAMESPACE"])
    broker.add_middleware(AsyncIO())
    close_on_shutdown(broker, delivery.register(broker, settings))
    worker = dramatiq.Worker(broker, worker_threads=int(os.environ.get("THREADS", "4")), worker_timeout=100)
    worker.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    worker.stop(timeout=10_000)
    broker.close()


if __name__ == "__main__":
    main()
