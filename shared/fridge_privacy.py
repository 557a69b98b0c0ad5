"""The shared fridge's part of /mydata and /forgetme (see shared/privacy.py).

Export: what the person gave (name, quantity, kind, best-before, status), what they took (day and
fridge), which fridges they follow. Forget: the names they typed for their food are erased (a
typed text may say anything) and their alert subscriptions removed; the rows stay — counted in
the fridge's statistics — pointing at the anonymised account.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import FridgeItem, FridgeSubscription, FridgeTake, User


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def export(session: AsyncSession, user: User) -> dict[str, Any]:
    given = await session.scalars(select(FridgeItem).where(FridgeItem.donor_id == user.id).order_by(FridgeItem.id))
    taken = await session.scalars(select(FridgeTake).where(FridgeTake.user_id == user.id)
                                  .order_by(FridgeTake.day, FridgeTake.item_id))
    follows = await session.scalars(select(FridgeSubscription.fridge_code).where(FridgeSubscription.user_id == user.id)
                                    .order_by(FridgeSubscription.fridge_code))
    return {
        "given": [{"code": i.code, "fridge": i.fridge_code, "name": i.name, "quantity": i.quantity, "kind": i.kind,
                   "best_before": _iso(i.best_before), "status": i.status, "created_at": _iso(i.created_at)}
                  for i in given],
        "taken": [{"fridge": t.fridge_code, "day": _iso(t.day)} for t in taken],
        "alerts_for": list(follows),
    }


async def forget(session: AsyncSession, user: User, erased: str) -> None:
    await session.execute(update(FridgeItem).where(FridgeItem.donor_id == user.id).values(name=erased))
    await session.execute(delete(FridgeSubscription).where(FridgeSubscription.user_id == user.id))
