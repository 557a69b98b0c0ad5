"""The intake worker (`linju intake`): classify a stored request and route it.

Idempotent: a request is only classified while it is `received`, and every
change is a conditional UPDATE, so a second delivery of the same message
changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import dramatiq

from services.intake.classifier import Classifier, load_classifier
from shared.config import CommunitiesConfig
from shared.domain.requests import RequestStatus
from shared.intake.outcome import IntakeDecision, apply_decision
from shared.open311 import service_hint
from shared.queue.contracts import CLASSIFY_REQUEST, DELIVER_NOTIFICATION, ClassifyRequest, DeliverNotification, send
from shared.repo.requests import get_request_and_resident
from shared.runtime import Database, load_config
from shared.settings import Settings
from shared.taxonomy import FLOW_LABELS, MENU_LABEL

log = logging.getLogger("linju.intake")


class Intake:
    def __init__(self, settings: Settings, broker: dramatiq.Broker, *, classifier: Classifier | None = None,
                 config: CommunitiesConfig | None = None):
        self.settings = settings
        self.broker = broker
        self.config = config or load_config(settings)
        self.classifier = classifier or load_classifier()
        self._database: Database | None = None

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database.connect(self.settings)
        return self._database

    async def process(self, request_id: int) -> list[int]:
        """Classify and route one request; returns the outbox ids it queued (empty if nothing to do)."""
        async with self.database.sessions() as session:
            request = await get_request_and_resident(session, request_id)
            if request is None or request.status != RequestStatus.RECEIVED:
                return []
            result = self.classifier.classify(request.text)
            decision = IntakeDecision(
                label=result.label, urgent=result.urgent, confidence=result.confidence, decided=result.decided,
                choices=tuple(result.choices(3)), rule=result.rule,
            )
            # An Open311 submitter chose a service: it decides where the classifier is unsure
            # or sees no case (there is no chat in which to ask them); urgency stays the classifier's.
            hint = service_hint(request)
            if hint and (not decision.decided or decision.label in FLOW_LABELS or decision.label == MENU_LABEL):
                decision = replace(decision, label=hint, decided=True)
            outbox_ids = await apply_decision(session, self.config, request, decision)
            await session.commit()
        log.info("request classified", extra={"request_id": request_id, "label": decision.label,
                                               "urgent": decision.urgent, "decided": decision.decided,
                                               "confidence": round(decision.confidence, 3)})
        # Deliver after commit; if this enqueue is lost the scheduler re-enqueues pending rows.
        await asyncio.to_thread(self._enqueue_deliveries, outbox_ids)
        return outbox_ids

    def _enqueue_deliveries(self, outbox_ids: list[int]) -> None:
        for outbox_id in outbox_ids:
            send(self.broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))

    async def close(self) -> None:
        if self._database is not None:
            await self._database.close()


def register(broker: dramatiq.Broker, settings: Settings, **kwargs: object) -> Intake:
    intake = Intake(settings, broker, **kwargs)  # type: ignore[arg-type]

    async def classify_request(payload: ClassifyRequest) -> None:
        await intake.process(payload.request_id)

    CLASSIFY_REQUEST.declare(broker, classify_request, min_backoff=500, max_backoff=30_000)
    return intake
