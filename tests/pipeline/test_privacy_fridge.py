"""/mydata and /forgetme cover the shared fridge: what was given, taken and followed."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from shared.db.models import FridgeItem, FridgeSubscription
from shared.privacy import ERASED
from tests.pipeline.test_fridge import FRIDGE, donate
from tests.pipeline.test_request_handling import people  # noqa: F401 - fixture
from tests.pipeline.test_resident_request import RESIDENT


async def test_fridge_data_is_shown_and_erased_without_breaking_counts(people, db):
    p = people
    await donate(p, name="自家包的韭菜盒子")
    await p.feed(p.updates.press(RESIDENT, f"fr:sub:{FRIDGE}"))
    n = len(p.telegram.sent(RESIDENT))
    await p.feed(p.updates.message(RESIDENT, "/mydata"))
    title, *chunks = p.telegram.sent(RESIDENT)[n:]
    fridge = json.loads("".join(m.text for m in chunks))["fridge"]
    assert [(g["name"], g["fridge"], g["status"]) for g in fridge["given"]] == [("自家包的韭菜盒子", FRIDGE, "pledged")]
    assert fridge["alerts_for"] == [FRIDGE] and fridge["taken"] == []
    async with db.sessions() as session:
        items_before = await session.scalar(select(func.count()).select_from(FridgeItem))
    await p.feed(p.updates.message(RESIDENT, "/forgetme"))
    await p.feed(p.updates.press(RESIDENT, "fm:yes"))
    async with db.sessions() as session:
        names = list(await session.scalars(select(FridgeItem.name)))
        follows = await session.scalar(select(func.count()).select_from(FridgeSubscription))
    assert len(names) == items_before == 1 and names == [ERASED]  # counted still, no longer described
    assert follows == 0
