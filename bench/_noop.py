"""A no-op dramatiq actor on the benchmark's Redis, for dramatiq's own message rate (`bench/intake_e2e.py`).

    NOOP_REDIS_URL=redis://127.0.0.1:6379/9 NOOP_NAMESPACE=bench-noop dramatiq _noop --processes 2 --threads 8
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from shared.queue.broker import redis_client

broker = RedisBroker(client=redis_client(os.environ["NOOP_REDIS_URL"]), namespace=os.environ["NOOP_NAMESPACE"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="noop", actor_name="noop", max_retries=0)
def noop() -> None:
    pass
