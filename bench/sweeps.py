"""sweeps: the SLA escalation sweep over 100,000 requests on PostgreSQL (issue 10; the fridge
expiry, book hold and shift-planning sweeps are measured by `bench/fridge.py` and `bench/books.py`).

A fresh database per run, seeded with the raw driver: 100,000 requests in three communities,
most of them closed, 10 % active and not yet due, 5 % active and overdue past the escalation
grace (so each needs a reminder and then an escalation), half of those assigned to a staff
member. The sweep runs through the real code (`shared.sweeps.sla_sweep`, one transaction per
tick, as `services/scheduler/jobs.py` runs it) until a tick finds nothing; every tick is timed.
Then a second pass must send nothing. Prints JSON last.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import datetime, timedelta, timezone

import asyncpg

from _common import asyncpg_dsn, fresh_database, log, percentile
from shared import sweeps
from shared.config import load_communities
from shared.repo.communities import sync_communities
from shared.runtime import Database
from shared.settings import REPO_ROOT, Settings

REQUESTS = 100_000
OVERDUE_SHARE, ACTIVE_SHARE = 0.05, 0.10
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


async def seed(url: str, config) -> int:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("INSERT INTO users (display_name, platform, external_id, locale, roles) "
                           "VALUES ('staff', 'telegram', '700001', 'zh', '[\"staff\"]'::json)")
        staff_id = await conn.fetchval("SELECT id FROM users WHERE external_id = '700001'")
        codes = [c.code for c in config.communities]
        rng = random.Random(11)
        rows, overdue = [], 0
        grace = timedelta(hours=config.defaults.sla_escalate_after_hours)
        for i in range(REQUESTS):
            roll = rng.random()
            if roll < OVERDUE_SHARE:
                status, due = rng.choice(["routed", "in_progress"]), NOW - grace - timedelta(hours=rng.randint(1, 48))
                overdue += 1
            elif roll < OVERDUE_SHARE + ACTIVE_SHARE:
                status, due = rng.choice(["routed", "in_progress"]), NOW + timedelta(hours=rng.randint(1, 72))
            else:
                status, due = rng.choice(["closed", "resolved", "withdrawn"]), NOW - timedelta(days=rng.randint(1, 300))
            assignee = staff_id if (status == "in_progress" and i % 2) else None
            rows.append((f"B{i:07d}", codes[i % len(codes)], f"request {i}", "[]", "repair", False, status, "property",
                         due, "telegram", assignee, f"bench:{i}"))
        await conn.copy_records_to_table("requests", records=rows, columns=[
            "number", "community_code", "text", "attachments", "category", "urgent", "status", "team", "due_at",
            "source", "assignee_id", "idempotency_key"])
        await conn.execute("ANALYZE")
        return overdue
    finally:
        await conn.close()


async def run(url: str) -> dict:
    config = load_communities(REPO_ROOT / "config" / "communities.yaml")
    database = Database.connect(Settings(database_url=url, _env_file=None), pool_size=2)
    async with database.sessions() as session:
        await sync_communities(session, config)
        await session.commit()
    overdue = await seed(url, config)
    log(f"seeded {REQUESTS} requests, {overdue} overdue")

    async def tick() -> tuple[float, int]:
        started = time.perf_counter()
        async with database.sessions() as session:
            outbox = await sweeps.sla_sweep(session, config, NOW)
            await session.commit()
        return time.perf_counter() - started, len(outbox)

    ticks, messages = [], 0
    started = time.perf_counter()
    while True:
        seconds, sent = await tick()
        ticks.append(seconds)
        messages += sent
        if not sent:
            break
    total = time.perf_counter() - started
    again_s, again = await tick()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    stages = dict(await conn.fetch("SELECT sla_stage, count(*) FROM requests GROUP BY sla_stage"))
    events = await conn.fetchval("SELECT count(*) FROM request_events WHERE kind LIKE 'sla_%'")
    await conn.close()
    await database.close()
    return {
        "requests": REQUESTS, "overdue": overdue, "ticks": len(ticks), "batch": sweeps.BATCH,
        "tick_median_s": round(percentile(ticks, 0.5) or 0, 3), "tick_p99_s": round(percentile(ticks, 0.99) or 0, 3),
        "first_tick_s": round(ticks[0], 3), "all_overdue_handled_s": round(total, 3),
        "messages": messages, "escalated": stages.get(2, 0), "events": events,
        "second_pass_s": round(again_s, 3), "second_pass_messages": again,
        "bar_s": 2.0, "ok": total < 2.0 and again == 0 and stages.get(2, 0) == overdue,
    }


def main() -> None:
    with fresh_database("sweeps") as url:
        figures = asyncio.run(run(url))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
