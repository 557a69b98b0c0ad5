"""Operations endpoints: `/healthz` (alive), `/readyz` (database and broker answer), `/metrics`.

The metrics are read from the shared database at scrape time (the database is the one
place every process writes to), so any number of bot, intake and delivery processes are
counted without each exposing its own port. Only counts: no personal data.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from services.dashboard.context import dashboard
from shared.clock import as_utc, utcnow
from shared.db.models import OutboxMessage, Request, RequestEvent, Task
from shared.domain.requests import RequestStatus

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_WINDOW = timedelta(hours=24)
LATENCY_SAMPLE = 5000


class _Snapshot:
    """A collector that yields metric families computed beforehand (prometheus-client collectors are sync)."""

    def __init__(self, families: list) -> None:  # type: ignore[type-arg]
        self.families = families

    def collect(self):  # type: ignore[no-untyped-def]
        yield from self.families


async def collect(session) -> list:  # type: ignore[no-untyped-def, type-arg]
    families = []
    requests = GaugeMetricFamily("linju_requests", "Requests by community, category and status",
                                 labels=["community", "category", "status"])
    for community, category, status, count in await session.execute(
            select(Request.community_code, Request.category, Request.status, func.count())
            .group_by(Request.community_code, Request.category, Request.status)):
        requests.add_metric([community, category or "", status], count)
    families.append(requests)

    overdue = GaugeMetricFamily("linju_requests_overdue", "Open requests past their due time", labels=["community"])
    for community, count in await session.execute(
            select(Request.community_code, func.count())
            .where(Request.status.in_([RequestStatus.ROUTED, RequestStatus.IN_PROGRESS]), Request.due_at < utcnow())
            .group_by(Request.community_code)):
        overdue.add_metric([community], count)
    families.append(overdue)

    # Intake latency: from the resident's message being stored to the classifier's decision.
    since = utcnow() - LATENCY_WINDOW
    pairs = await session.execute(
        select(Request.created_at, func.min(RequestEvent.created_at))
        .join(RequestEvent, RequestEvent.request_id == Request.id)
        .where(RequestEvent.kind == "classified", Request.created_at >= since)
        .group_by(Request.id, Request.created_at).limit(LATENCY_SAMPLE))
    latencies = [max(0.0, (as_utc(done) - as_utc(created)).total_seconds()) for created, done in pairs]
    buckets, running = [], 0
    for bound in LATENCY_BUCKETS:
        running = sum(1 for v in latencies if v <= bound)
        buckets.append((repr(bound), running))
    buckets.append(("+Inf", len(latencies)))
    families.append(HistogramMetricFamily("linju_intake_latency_seconds",
                                          "Message stored → classified, requests of the last 24 h",
                                          buckets=buckets, sum_value=sum(latencies)))

    outbox = GaugeMetricFamily("linju_outbox", "Notifications in the outbox by status (pending = queue depth)",
                               labels=["status"])
    sent = 0
    for status, count in await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)):
        outbox.add_metric([status], count)
        sent = count if status == "sent" else sent
    families.append(outbox)
    families.append(CounterMetricFamily("linju_notifications_sent", "Notifications delivered (rate() = delivery rate)",
                                        value=sent))
    throttled = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                     .where(OutboxMessage.last_error.like("429%")))
    families.append(GaugeMetricFamily("linju_notifications_throttled",
                                      "Notifications whose last attempt Telegram answered with 429", value=throttled or 0))
    waiting = await session.scalar(select(func.count()).select_from(Request)
                                   .where(Request.status == RequestStatus.RECEIVED))
    families.append(GaugeMetricFamily("linju_intake_waiting", "Requests stored, not yet classified (intake queue depth)",
                                      value=waiting or 0))

    tasks = GaugeMetricFamily("linju_tasks", "Volunteer tasks by community and status", labels=["community", "status"])
    for community, status, count in await session.execute(
            select(Task.community_code, Task.status, func.count()).group_by(Task.community_code, Task.status)):
        tasks.add_metric([community, status], count)
    families.append(tasks)
    claims = await session.scalar(select(func.count()).select_from(Task).where(Task.claimed_at.is_not(None)))
    families.append(CounterMetricFamily("linju_task_claims", "Tasks claimed by a volunteer", value=claims or 0))
    return families


async def metrics(request: web.Request) -> web.Response:
    dash = dashboard(request)
    token = dash.settings.metrics_token
    if token is not None and token.get_secret_value():
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode()):
            raise web.HTTPUnauthorized(text="metrics need the bearer token")
    async with dash.database.sessions() as session:
        families = await collect(session)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    checks = await dashboard(request).ready()
    return web.json_response({"ok": all(checks.values()), **checks}, status=200 if all(checks.values()) else 503)


def routes() -> list[web.RouteDef]:
    return [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)]
