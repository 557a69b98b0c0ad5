"""Named message contracts between services.

A producer sends a contract with a payload; it never imports the consumer's
module. A consumer declares its actor with the contract's name and queue and
validates the payload with the contract's schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import dramatiq
from pydantic import AwareDatetime, BaseModel, ConfigDict

P = TypeVar("P", bound=BaseModel)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassifyRequest(Payload):
    request_id: int


class DeliverNotification(Payload):
    outbox_id: int


class RunJob(Payload):
    """One run of a scheduler job (services.scheduler.jobs.JOBS) for the instant `now`.

    `now` is the scheduler's tick, not the worker's clock: a retried or late message does
    exactly what it would have done on time, so running it again changes nothing.
    """

    name: str
    now: AwareDatetime


@dataclass(frozen=True)
class Contract(Generic[P]):
    actor_name: str
    queue_name: str
    payload: type[P]
    max_retries: int = 10

    def message(self, payload: P) -> dramatiq.Message:
        return dramatiq.Message(
            queue_name=self.queue_name,
            actor_name=self.actor_name,
            args=(),
            kwargs=payload.model_dump(mode="json"),
            options={},
        )

    def parse(self, kwargs: dict) -> P:
        return self.payload.model_validate(kwargs)

    def declare(self, broker: dramatiq.Broker, handle: Callable[[P], Awaitable[None]], *,
                min_backoff: int, max_backoff: int) -> None:
        """Declare this contract's actor on `broker`: each message is parsed into the payload and
        handed to `handle` (an async function, run by dramatiq's AsyncIO middleware)."""

        async def actor(**kwargs: object) -> None:
            await handle(self.parse(kwargs))

        actor.__name__ = self.actor_name.replace(".", "_")
        dramatiq.actor(actor, broker=broker, actor_name=self.actor_name, queue_name=self.queue_name,
                       max_retries=self.max_retries, min_backoff=min_backoff, max_backoff=max_backoff)


CLASSIFY_REQUEST = Contract("intake.classify_request", "intake", ClassifyRequest)
DELIVER_NOTIFICATION = Contract("delivery.deliver_notification", "delivery", DeliverNotification)
# Jobs are idempotent and the next tick enqueues them again: a few quick retries are enough.
RUN_JOB = Contract("scheduler.run_job", "jobs", RunJob, max_retries=3)


def send(broker: dramatiq.Broker, contract: Contract[P], payload: P, *, delay_ms: int | None = None) -> None:
    """Enqueue synchronously (from worker threads and scripts)."""
    if contract.queue_name not in broker.get_declared_queues():
        broker.declare_queue(contract.queue_name)
    broker.enqueue(contract.message(payload), delay=delay_ms)


async def send_async(broker: dramatiq.Broker, contract: Contract[P], payload: P) -> None:
    """Enqueue from an event loop: dramatiq's enqueue blocks on the network, so run it in a thread."""
    await asyncio.to_thread(send, broker, contract, payload)
