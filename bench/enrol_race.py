"""enrol_race: 200 residents press "Enrol" on one activity with 30 places at once (issue 13).

Measured on PostgreSQL through the flow the bot runs for the press (load the person, check the
community, audience and window, lock the activity, place or waiting list, commit). Reports places
given per round (must equal the capacity), waiting-list numbers (each handed out once, in order)
and press latency. Prints JSON last.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
from sqlalchemy import select  # noqa: E402

from shared import activities as service  # noqa: E402
from shared.clock import utcnow  # noqa: E402
from shared.config import load_communities  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.db.models import ActivityEnrolment  # noqa: E402
from shared.flows.context import FlowContext  # noqa: E402
from shared.flows.dispatch import handle_action  # noqa: E402
from shared.repo.communities import sync_communities  # noqa: E402
from shared.repo.users import get_or_create_user, give_consent  # noqa: E402
from shared.runtime import Database  # noqa: E402
from shared.settings import REPO_ROOT, Settings  # noqa: E402

RESIDENTS = 200
CAPACITY = 30
ROUNDS = 5
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
            for i in range(RESIDENTS):
                user = await get_or_create_user(session, "telegram", str(810000 + i))
                give_consent(user)
                user.community_code = "yjy"
            await session.commit()

        async def enqueue(_contract, _payload) -> None:
            return None

        async def press(telegram_id: int, activity_id: int) -> float:
            started = time.perf_counter()
            async with database.sessions() as session:
                user = await get_or_create_user(session, "telegram", str(telegram_id))
                ctx = FlowContext(session=session, config=config, user=user, enqueue=enqueue)
                await handle_action(ctx, f"ace:{activity_id}:self")
            return (time.perf_counter() - started) * 1000

        latencies, places, waiting, in_order, walls = [], [], [], [], []
        for _ in range(ROUNDS):
            start = utcnow() + timedelta(days=2)
            async with database.sessions() as session:
                activity = await service.create_activity(session, community="yjy", title="bench", audience="seniors",
                                                          place="-", capacity=CAPACITY,
                                                          spans=[(start, start + timedelta(hours=1))])
                await session.commit()
            began = time.perf_counter()
            latencies += await asyncio.gather(*(press(810000 + i, activity.id) for i in range(RESIDENTS)))
            walls.append(time.perf_counter() - began)
            async with database.sessions() as session:
                rows = list(await session.scalars(select(ActivityEnrolment).where(
                    ActivityEnrolment.activity_id == activity.id).order_by(ActivityEnrolment.queue_no)))
            places.append(sum(r.status == "enrolled" for r in rows))
            waiting.append(sum(r.status == "waiting" for r in rows))
            # Places go to the first arrivals under the lock; queue numbers are 1..N with no gap or repeat.
            numbers = [r.queue_no for r in rows]
            in_order.append(numbers == list(range(1, len(rows) + 1))
                            and all(r.status == "enrolled" for r in rows[:CAPACITY]))
        await database.close()
        return {
            "residents": RESIDENTS, "capacity": CAPACITY, "rounds": ROUNDS, "pool_connections": 25,
            "places_given_per_round": sorted(set(places)), "waiting_per_round": sorted(set(waiting)),
            "order_kept_every_round": all(in_order),
            "press_p50_ms": pct(latencies, 0.50), "press_p99_ms": pct(latencies, 0.99),
            "presses_per_second": round(RESIDENTS * ROUNDS / sum(walls), 1),
        }
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
