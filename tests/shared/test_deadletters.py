"""Dead letters on the real Redis broker: a message whose retries ran out is listed and replayed
(`linju deadletters list|replay` call these functions)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from shared.queue import deadletters
from shared.queue.broker import redis_client
from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification, send
from shared.settings import REPO_ROOT


def test_dead_letters_are_listed_and_replayed_once(redis_url):
    namespace = f"linju-dl-test-{uuid.uuid4().hex[:8]}"
    client = redis_client(redis_url)
    broker = RedisBroker(client=client, namespace=namespace)
    calls: list[int] = []
    telegram_down = [True]

    def deliver_notification(outbox_id: int) -> None:
        calls.append(outbox_id)
        if telegram_down[0]:
            raise RuntimeError("Telegram unreachable")

    dramatiq.actor(deliver_notification, broker=broker, actor_name=DELIVER_NOTIFICATION.actor_name,
                   queue_name=DELIVER_NOTIFICATION.queue_name, max_retries=0)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=7))
        broker.join(DELIVER_NOTIFICATION.queue_name)
        worker.join()
        letters = deadletters.list_dead(client, namespace)
        assert [(l.queue, l.actor, l.kwargs) for l in letters] == [
            ("delivery", DELIVER_NOTIFICATION.actor_name, {"outbox_id": 7})]

        telegram_down[0] = False
        assert deadletters.replay(client, broker, namespace) == 1
        broker.join(DELIVER_NOTIFICATION.queue_name)
        worker.join()
        assert calls == [7, 7]
        assert deadletters.list_dead(client, namespace) == []
        assert deadletters.replay(client, broker, namespace) == 0  # replaying again changes nothing
    finally:
        worker.stop()
        broker.flush_all()
        broker.close()


def _dead_letter(broker: RedisBroker, outbox_id: int) -> None:
    def deliver_notification(outbox_id: int) -> None:
        raise RuntimeError("Telegram unreachable")

    dramatiq.actor(deliver_notification, broker=broker, actor_name=DELIVER_NOTIFICATION.actor_name,
                   queue_name=DELIVER_NOTIFICATION.queue_name, max_retries=0)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))
        broker.join(DELIVER_NOTIFICATION.queue_name)
        worker.join()
    finally:
        worker.stop()


def test_the_linju_command_lists_and_replays_dead_letters(redis_url, tmp_path):
    """The operator's command, as a process (it uses the broker's default namespace)."""
    client = redis_client(redis_url)
    broker = RedisBroker(client=client)
    outbox_id = uuid.uuid4().int % 10**9
    env = {"REDIS_URL": redis_url, "BROKER": "redis", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}

    def linju(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    try:
        _dead_letter(broker, outbox_id)
        listed = [json.loads(line) for line in linju("deadletters", "list").splitlines()]
        assert {"queue": "delivery", "actor": DELIVER_NOTIFICATION.actor_name, "kwargs": {"outbox_id": outbox_id}} in [
            {k: v for k, v in letter.items() if k != "message_id"} for letter in listed]
        assert "replayed" in linju("deadletters", "replay")
        assert all(letter.kwargs != {"outbox_id": outbox_id} for letter in deadletters.list_dead(client))
        queued = [json.loads(raw) for raw in client.hvals(f"dramatiq:{DELIVER_NOTIFICATION.queue_name}.msgs")]
        assert [m["kwargs"] for m in queued if m["kwargs"] == {"outbox_id": outbox_id}] == [{"outbox_id": outbox_id}]
    finally:
        broker.flush(DELIVER_NOTIFICATION.queue_name)
        broker.close()
