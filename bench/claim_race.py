"""claim_race: 200 volunteers press Claim on one task at once (SPEC §6: one winner, p99 < 300 ms).

Measured on PostgreSQL through what the bot runs for a press: the claim lane (shared/claim_lane.py:
one read on the raw driver answers a press for a task no longer open; presses that can still win
run one at a time per task) in front of the full flow (load the person, the conditional
UPDATE … RETURNING with the approved-volunteer check, retire the other offers, commit).
Also measured: the full flow for every press without the lane (what the lane saves), and — as the
ceiling — a bare asyncpg UPDATE … RETURNING. Every loser must be told "taken". Prints JSON last.
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
from shared.claim_lane import ClaimLane, asyncpg_dsn  # noqa: E402
from shared.db.models import Volunteer  # noqa: E402
from shared.flows.context import FlowContext  # noqa: E402
from shared.flows.dispatch import handle_action  # noqa: E402
from shared.i18n import t  # noqa: E402
from shared.repo.communities import sync_communities  # noqa: E402
from shared.repo.users import get_or_create_user, give_consent, grant_role  # noqa: E402
from shared.runtime import Database, use_uvloop  # noqa: E402
from shared.settings import REPO_ROOT, Settings  # noqa: E402
from shared.volunteering import create_task  # noqa: E402

CLAIMERS = 200
LANE_CONNECTIONS = 4  # the bot's default (services/bot/app.py create_claim_lane)
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

        lane = ClaimLane(asyncpg_dsn(url), connections=LANE_CONNECTIONS)
        taken = t("zh", "tasks.already_taken", title="bench")
        full_runs = 0

        async def full_flow(telegram_id: int, task_id: int) -> list:
            nonlocal full_runs
            full_runs += 1
            async with database.sessions() as session:
                user = await get_or_create_user(session, "telegram", str(telegram_id))
                ctx = FlowContext(session=session, config=config, user=user, enqueue=enqueue)
                return await handle_action(ctx, f"tk:claim:{task_id}")

        async def press(telegram_id: int, task_id: int, through_lane: bool) -> tuple[float, bool, bool]:
            started = time.perf_counter()
            if through_lane:
                replies = await lane.press("telegram", str(telegram_id), task_id,
                                           lambda: full_flow(telegram_id, task_id))
            else:
                replies = await full_flow(telegram_id, task_id)
            # The winner gets the task card with its start/done/release buttons; the others get "taken".
            return (time.perf_counter() - started) * 1000, bool(replies[0].buttons), replies[0].text == taken

        async def rounds(through_lane: bool) -> tuple[list[float], list[int], list[int], list[int]]:
            nonlocal full_runs
            latencies, won, told, full = [], [], [], []
            for _ in range(ROUNDS):
                async with database.sessions() as session:
                    task, _ = await create_task(session, config, community="zjy", skill="errands", title="bench",
                                                details="d", place=None, window_start=utcnow(),
                                                window_end=utcnow() + timedelta(hours=1))
                    await session.commit()
                full_runs = 0
                results = await asyncio.gather(*(press(800000 + i, task.id, through_lane) for i in range(CLAIMERS)))
                latencies += [ms for ms, _, _ in results]
                won.append(sum(w for _, w, _ in results))
                told.append(sum(x for _, _, x in results))
                full.append(full_runs)
            return latencies, won, told, full

        flow_latencies, winners, told_taken, full_runs_per_round = await rounds(through_lane=True)
        no_lane_latencies, no_lane_winners, no_lane_told, _ = await rounds(through_lane=False)
        await lane.close()
        await database.close()

        pool = await asyncpg.create_pool(database=name, min_size=25, max_size=25, **PG)
        bare, bare_winners = [], []
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
            bare_winners.append(sum(won for _, won in results))
        await pool.close()
        return {
            "claimers": CLAIMERS, "rounds": ROUNDS, "pool_connections": 25, "lane_connections": LANE_CONNECTIONS,
            "winners_per_round": sorted(set(winners + no_lane_winners + bare_winners)),
            "told_taken_per_round": sorted(set(told_taken + no_lane_told)),
            "full_flow_runs_per_round": sorted(set(full_runs_per_round)),
            "flow_p50_ms": pct(flow_latencies, 0.50), "flow_p99_ms": pct(flow_latencies, 0.99),
            "flow_median_of_round_max_ms": round(statistics.median(
                max(flow_latencies[i:i + CLAIMERS]) for i in range(0, len(flow_latencies), CLAIMERS)), 2),
            "no_lane_p50_ms": pct(no_lane_latencies, 0.50), "no_lane_p99_ms": pct(no_lane_latencies, 0.99),
            "bare_update_p50_ms": pct(bare, 0.50), "bare_update_p99_ms": pct(bare, 0.99),
        }
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    use_uvloop()  # the bot's loop (services/cli.py), for the flow and the bare ceiling alike
    print(json.dumps(asyncio.run(main())))
