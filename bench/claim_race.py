"""claim_race: 200 volunteers press Claim on one task at once (SPEC §6: one winner, p99 < 300 ms).

Measured on PostgreSQL through the flow the bot runs for a press (load the person, check they
are an approved volunteer of the community, the conditional UPDATE … RETURNING, retire the other
offers, commit), and — as the ceiling — a bare asyncpg UPDATE … RETURNING. Prints JSON last.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402

from shared.clock import utcnow  # noqa: E402
from shared.config import load_communities  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.db.models import Volunteer  # noqa: E402
from shared.flows.context import FlowContext  # noqa: E402
from shared.flows.dispatch import handle_action  # noqa: E402
from shared.repo.communities import sync_communities  # noqa: E402
from shared.repo.users import get_or_create_user, give_consent, grant_role  # noqa: E402
from shared.runtime import Database  # noqa: E402
from shared.settings import REPO_ROOT, Settings  # noqa: E402
from shared.volunteering import create_task  # noqa: E402

CLAIMERS = 200
ROUNDS = 10
PG = dict(host="127.0.0.1", port=5432, user="postgres")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def main() -> dict:
    name = f"linju_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database="postgres", **PG)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        config = load_communities(REPO_ROOT / "config" / "communities.yaml")
        database = Database.connect(Settings(database_url=url, _env_file=None), pool_size=25)
        async with database.sessions() as session:
            await sync_communities(session, config)
            for i in range(CLAIMERS):
                user = await get_or_create_user(session, "telegram", str(800000 + i))
                give_consent(user)
                user.community_code = "zjy"
                grant_role(user, "volunteer")
                await session.flush()
                session.add(Volunteer(user_id=user.id, name=f"v{i}", community_code="zjy", skills=["errands"],
                                      days=[], parts=[], status="approved"))
            await session.commit()

        async def enqueue(_contract, _payload) -> None:
            return None

        async def press(telegram_id: int, task_id: int) -> tuple[float, bool]:
            started = time.perf_counter()
            async with database.sessions() as session:
                user = await get_or_create_user(session, "telegram", str(telegram_id))
                ctx = FlowContext(session=session, config=config, user=user, enqueue=enqueue)
                replies = await handle_action(ctx, f"tk:claim:{task_id}")
            # The winner gets the task card with its start/done/release buttons; the others get "taken".
            return (time.perf_counter() - started) * 1000, bool(replies[0].buttons)

        flow_latencies, winners = [], []
        for _ in range(ROUNDS):
            async with database.sessions() as session:
                task, _ = await create_task(session, config, community="zjy", skill="errands", title="bench",
                                            details="d", place=None, window_start=utcnow(),
                                            window_end=utcnow() + timedelta(hours=1))
                await session.commit()
            results = await asyncio.gather(*(press(800000 + i, task.id) for i in range(CLAIMERS)))
            flow_latencies += [ms for ms, _ in results]
            winners.append(sum(won for _, won in results))
        await database.close()

        pool = await asyncpg.create_pool(database=name, min_size=25, max_size=25, **PG)
        bare = []
        for _ in range(ROUNDS):
            task_id = await pool.fetchval(
                "INSERT INTO tasks (community_code, source, skill, title, window_start, window_end, est_hours, status,"
                " offer_round, reminder_stage) VALUES ('zjy','staff','errands','bare', now(), now(), 1, 'open', 1, 0)"
                " RETURNING id")

            async def claim(user_id: int) -> tuple[float, bool]:
                started = time.perf_counter()
                won = await pool.fetchval("UPDATE tasks SET status='claimed', claimer_id=$2 WHERE id=$1 AND "
                                          "status='open' RETURNING id", task_id, user_id)
                return (time.perf_counter() - started) * 1000, won is not None

            results = await asyncio.gather(*(claim(1 + i % CLAIMERS) for i in range(CLAIMERS)))
            bare += [ms for ms, _ in results]
            winners.append(sum(won for _, won in results))
        await pool.close()
        return {
            "claimers": CLAIMERS, "rounds": ROUNDS, "pool_connections": 25,
            "winners_per_round": sorted(set(winners)),
            "flow_p50_ms": pct(flow_latencies, 0.50), "flow_p99_ms": pct(flow_latencies, 0.99),
            "flow_median_of_round_max_ms": round(statistics.median(
                max(flow_latencies[i:i + CLAIMERS]) for i in range(0, len(flow_latencies), CLAIMERS)), 2),
            "bare_update_p50_ms": pct(bare, 0.50), "bare_update_p99_ms": pct(bare, 0.99),
        }
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
