"""fridge: the scheduler's fridge bars on PostgreSQL (SPEC §6: expiry sweep over 100,000 items < 2 s;
a week of shifts for 20 fridges < 1 s). A fresh database per run. Prints JSON last.

- expiry: 100,000 items over 20 fridges (in the fridge, past best-before, expiring today, pledges
  past their slot, already closed), 50 subscribers per fridge; one `expiry_sweep` as the scheduler
  runs it (conditional UPDATE … RETURNING, messages to the shift volunteer and subscribers, commit),
  then a second run that must find nothing.
- shifts: 20 fridges, two shifts a day, planned for 7 days with one fridge_duty volunteer per
  community (tasks, shift rows, offers), then a second run that must create nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
import yaml  # noqa: E402

from shared import fridge_sweeps  # noqa: E402
from shared.config import parse_communities  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.domain import fridge as rules  # noqa: E402
from shared.repo.communities import sync_communities  # noqa: E402
from shared.runtime import Database  # noqa: E402
from shared.settings import REPO_ROOT, Settings  # noqa: E402

ITEMS = 100_000
FRIDGES = 20
SUBSCRIBERS = 50
PG = dict(host="127.0.0.1", port=5432, user="postgres")
TZ = "Asia/Shanghai"


def twenty_fridges():  # type: ignore[no-untyped-def]
    data = yaml.safe_load((REPO_ROOT / "config" / "communities.yaml").read_text(encoding="utf-8"))
    template = data["communities"][1]["fridges"][0]
    for community in data["communities"]:
        community["fridges"] = []
    for i in range(FRIDGES):
        data["communities"][i % len(data["communities"])]["fridges"].append(dict(template, code=f"fridge-{i:02d}"))
    return parse_communities(yaml.safe_dump(data, allow_unicode=True))


async def main() -> dict:
    name = f"linju_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database="postgres", **PG)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        config = twenty_fridges()
        fridges = [(c.code, f.code) for c in config.communities for f in c.fridges]
        assert len(fridges) == FRIDGES
        database = Database.connect(Settings(database_url=url, _env_file=None), pool_size=4)
        async with database.sessions() as session:
            await sync_communities(session, config)
            await session.commit()
        today = date(2026, 12, 1)
        now = rules.at_local(today, rules.parse_span("10:00-11:00")[0], TZ)

        # Seed with the raw driver (fast), then sweep through the real code.
        conn = await asyncpg.connect(database=name, **PG)
        users = [(f"u{i}", "telegram", str(900000 + i), "zh", "[]") for i in range(FRIDGES * SUBSCRIBERS + FRIDGES)]
        await conn.executemany("INSERT INTO users (display_name, platform, external_id, locale, roles) "
                               "VALUES ($1, $2, $3, $4, $5::json)", users)
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM users ORDER BY id")]
        subs = [(ids[f * SUBSCRIBERS + k], code) for f, (_c, code) in enumerate(fridges) for k in range(SUBSCRIBERS)]
        await conn.executemany("INSERT INTO fridge_subscriptions (user_id, fridge_code) VALUES ($1, $2)", subs)
        volunteers = ids[FRIDGES * SUBSCRIBERS:]
        for i, community in enumerate(config.communities):
            await conn.execute("UPDATE users SET community_code = $1 WHERE id = $2", community.code, volunteers[i])
            await conn.execute("INSERT INTO volunteers (user_id, name, community_code, skills, days, parts, share_phone, "
                               "named_in_recognition, status) VALUES ($1, $2, $3, $4::json, $5::json, $6::json, false, "
                               "false, 'approved')", volunteers[i], f"v{i}", community.code, '["fridge_duty"]',
                               json.dumps(list(rules.DAYS)), '["am", "pm", "eve"]')
        rng = random.Random(7)
        rows = []
        at = now - timedelta(hours=3)
        for i in range(ITEMS):
            community, fridge = fridges[i % FRIDGES]
            roll = rng.random()
            if roll < 0.55:
                status, best = "in_fridge", today + timedelta(days=rng.randint(1, 5))       # fine
            elif roll < 0.75:
                status, best = "in_fridge", today - timedelta(days=rng.randint(1, 3))       # past: to remove
            elif roll < 0.85:
                status, best = "in_fridge", today                                          # expiring today
            elif roll < 0.90:
                status, best = "pledged", today + timedelta(days=2)                        # half lapse
            else:
                status, best = rng.choice(["taken", "removed", "refused"]), today - timedelta(days=rng.randint(0, 30))
            slot_end = at if (status != "pledged" or i % 2) else now + timedelta(hours=2)
            rows.append((f"B{i:07d}", fridge, community, f"item {i}", 1, 1, rng.choice(rules.KINDS), best, status,
                         slot_end - timedelta(hours=1), slot_end))
        await conn.copy_records_to_table("fridge_items", records=rows, columns=[
            "code", "fridge_code", "community_code", "name", "quantity", "remaining", "kind", "best_before", "status",
            "slot_start", "slot_end"])
        await conn.execute("ANALYZE")
        await conn.close()

        async def sweep(fn, when) -> tuple[float, int]:  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            async with database.sessions() as session:
                outbox = await fn(session, config, when)
                await session.commit()
            return time.perf_counter() - started, len(outbox)

        # Shifts first (so the expiry messages find a shift volunteer or staff), timed on their own.
        shift_s, shift_offers = await sweep(fridge_sweeps.plan_shifts, now)
        shift_again_s, shift_again = await sweep(fridge_sweeps.plan_shifts, now)
        expiry_s, expiry_messages = await sweep(fridge_sweeps.expiry_sweep, now)
        expiry_again_s, expiry_again = await sweep(fridge_sweeps.expiry_sweep, now + timedelta(minutes=5))
        conn = await asyncpg.connect(database=name, **PG)
        counts = dict(await conn.fetch("SELECT status, count(*) FROM fridge_items GROUP BY status"))
        shifts = await conn.fetchval("SELECT count(*) FROM fridge_shifts")
        tasks = await conn.fetchval("SELECT count(*) FROM tasks")
        announced = await conn.fetchval("SELECT count(*) FROM fridge_items WHERE expiry_announced_at IS NOT NULL")
        await conn.close()
        await database.close()
        return {
            "items": ITEMS, "fridges": FRIDGES, "subscribers_per_fridge": SUBSCRIBERS,
            "expiry_sweep_s": round(expiry_s, 3), "expiry_bar_s": 2.0, "expiry_messages": expiry_messages,
            "expiry_second_run_s": round(expiry_again_s, 3), "expiry_second_run_messages": expiry_again,
            "flagged_to_remove": counts.get("to_remove", 0), "lapsed": counts.get("lapsed", 0),
            "announced_expiring_today": announced,
            "shift_plan_s": round(shift_s, 3), "shift_bar_s": 1.0, "shifts": shifts, "tasks": tasks,
            "shift_offers": shift_offers, "shift_second_run_s": round(shift_again_s, 3),
            "shift_second_run_created": shift_again,
            "expiry_ok": expiry_s < 2.0 and expiry_again == 0, "shifts_ok": shift_s < 1.0 and shift_again == 0,
        }
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
