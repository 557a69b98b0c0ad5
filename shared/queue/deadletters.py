"""Dead-lettered messages (retries exhausted) on the Redis broker: list and replay (`linju deadletters`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import dramatiq
import redis

from shared.queue.contracts import CLASSIFY_REQUEST, DELIVER_NOTIFICATION

QUEUES = (CLASSIFY_REQUEST.queue_name, DELIVER_NOTIFICATION.queue_name)


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    actor: str
    kwargs: dict
    raw: bytes


def _keys(namespace: str, queue: str) -> tuple[str, str]:
    xq = f"{namespace}:{queue}.XQ"
    return xq, f"{xq}.msgs"


def list_dead(client: redis.Redis, namespace: str = "dramatiq") -> list[DeadLetter]:
    letters = []
    for queue in QUEUES:
        xq, msgs = _keys(namespace, queue)
        for message_id in client.zrange(xq, 0, -1):
            raw = client.hget(msgs, message_id)
            if raw is None:
                continue
            data = json.loads(raw)
            letters.append(DeadLetter(queue, message_id.decode(), data.get("actor_name", "?"), data.get("kwargs", {}), raw))
    return letters


def replay(client: redis.Redis, broker: dramatiq.Broker, namespace: str = "dramatiq") -> int:
    """Enqueue every dead-lettered message again (consumers are idempotent) and drop it from the dead letters."""
    count = 0
    for letter in list_dead(client, namespace):
        message = dramatiq.Message.decode(letter.raw)
        fresh = message.copy(options={k: v for k, v in message.options.items()
                                      if k not in ("retries", "traceback", "redis_message_id")})
        broker.declare_queue(letter.queue)
        broker.enqueue(fresh)
        xq, msgs = _keys(namespace, letter.queue)
        client.zrem(xq, letter.message_id)
        client.hdel(msgs, letter.message_id)
        count += 1
    return count
