"""When intake is unsure, the resident chooses; the choice routes the request and becomes labelled data."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from services.intake.classifier import Classification
from services.intake.feedback import export_feedback
from shared.db.models import Request
from tests.pipeline.test_request_handling import buttons, events
from tests.pipeline.test_resident_request import RESIDENT, onboard


class Unsure:
    """The shipped model's answer shape, forced below the threshold so the test does not depend on one text."""

    def classify(self, text: str) -> Classification:
        ranked = (("repair", 0.41), ("sanitation", 0.33), ("mediation", 0.14), ("other", 0.12))
        ranked += tuple((label, 0.0) for label in ("safety", "home_service"))
        return Classification(label="repair", urgent=False, confidence=0.41, ranked=ranked, decided=False)


@pytest.fixture
def unsure_pipeline(pipeline):
    pipeline.intake.classifier = Unsure()
    return pipeline


async def test_resident_picks_the_category(unsure_pipeline, db, settings):
    p = unsure_pipeline
    await onboard(p)
    await p.feed(p.updates.message(RESIDENT, "楼下那个东西又坏了还有味道"))
    await p.drain()
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    assert request.status == "needs_category"
    choose = p.telegram.sent(RESIDENT)[-1]
    assert request.number in choose.text
    assert buttons(choose) == [f"cat:{request.id}:repair", f"cat:{request.id}:sanitation",
                               f"cat:{request.id}:mediation", f"cat:{request.id}:other"]
    await p.feed(p.updates.press(RESIDENT, f"cat:{request.id}:sanitation"))
    await p.feed(p.updates.press(RESIDENT, f"cat:{request.id}:repair"))  # a second tap changes nothing
    await p.drain()
    async with db.sessions() as session:
        routed = await session.get(Request, request.id)
    assert (routed.status, routed.category, routed.team) == ("routed", "sanitation", "property")
    assert await events(db, request.id) == ["received", "classified", "routed", "category_chosen"]
    assert "已转交" in p.telegram.sent(RESIDENT)[-1].text or "已转交" in p.telegram.sent(RESIDENT)[-2].text

    out = io.StringIO()
    assert await export_feedback(p.settings, out) == 1
    line = json.loads(out.getvalue())
    assert line == {"text": "楼下那个东西又坏了还有味道", "label": "sanitation", "urgent": False, "source": "feedback"}


async def test_choosing_other_closes_it_with_the_menu(unsure_pipeline, db):
    p = unsure_pipeline
    await onboard(p)
    await p.feed(p.updates.message(RESIDENT, "嗯嗯"))
    await p.drain()
    async with db.sessions() as session:
        request = (await session.scalars(select(Request))).one()
    await p.feed(p.updates.press(RESIDENT, f"cat:{request.id}:other"))
    await p.drain()
    async with db.sessions() as session:
        assert (await session.get(Request, request.id)).status == "closed"
    assert "menu:report" in buttons(p.telegram.sent(RESIDENT)[-1]) or "menu:report" in buttons(p.telegram.sent(RESIDENT)[-2])
