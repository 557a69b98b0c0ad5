"""After a flow committed its change, hand the queued notifications to the delivery worker."""

from __future__ import annotations

from shared.flows.context import FlowContext
from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification


async def commit_and_deliver(ctx: FlowContext, outbox_ids: list[int]) -> None:
    await ctx.session.commit()
    for outbox_id in outbox_ids:
        # If this enqueue is lost, the scheduler re-enqueues pending outbox rows.
        await ctx.enqueue(DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))
