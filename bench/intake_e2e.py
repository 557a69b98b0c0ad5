"""End-to-end benchmark (SPEC §6 "end to end" and "throughput").

    python bench/intake_e2e.py [--rate 50] [--seconds 20] [--runs 3] [--backlog 2000] [--throughput-runs 3]
                               [--noop 20000]

Everything is a real process on real PostgreSQL (a fresh database) and Redis (its own db):
the playground (a Telegram-Bot-API server), `linju bot` polling it, `linju intake` and
`linju deliver` workers.

1. Latency at a fixed offered load: residents (already onboarded, one request each)
   write through the playground's people API at `--rate` requests/s (open loop: sends
   go out on schedule whatever the answers) for `--seconds`; for each request the
   times until the acknowledgement with the number and until the next bot message
   (the routed reply, or the category question when intake is unsure) arrive in the
   resident's chat. Median and p99 per run, and over all runs.
   The playground's rate limits are OFF and delivery runs with DELIVERY_SCALE=100:
   50 requests/s mean 100 messages/s to residents plus 50 staff cards, over Telegram's
   30 messages/s per bot by themselves, so under Telegram's limits no system could
   answer at this load; this measures our pipeline, not Telegram's limits.
2. Maximum sustained intake throughput with 1 and 2 `linju intake` processes:
   `--backlog` requests stored as the bot stores them (`create_request`), one
   classify message each, workers already running; rate = requests classified per
   second from the first to the last "classified" timeline event. Nothing lost:
   every request classified exactly once (one "classified" event each).
3. dramatiq's own no-op rate on the same Redis with two worker processes (the
   `dramatiq` CLI, 8 threads each): `--noop` messages are queued first, then the
   workers drain them (rate from the first message taken to the queue being empty);
   the two-worker intake figure is reported as a ratio to it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (LINJU, REPO, CpuMeter, asyncpg_dsn, emit, fresh_database, fresh_redis, log,  # noqa: E402
                     machine_cpu_seconds, percentile, queue_poll_max_ms, service_env, spawn, start_playground, stop,
                     wait_quiet)

FIRST_RESIDENT = 5_000_000
RESULTS = Path(__file__).resolve().parent / "results"


def texts() -> list[str]:
    found = []
    for name in ("test.jsonl", "valid.jsonl"):
        with open(REPO / "services" / "intake" / "data" / name, encoding="utf-8") as handle:
            found += [json.loads(line)["text"] for line in handle if line.strip()]
    random.Random(7).shuffle(found)
    return found


def stats(values: list[float]) -> dict[str, float | None]:
    return {"median_ms": round(statistics.median(values) * 1000, 1) if values else None,
            "p99_ms": round(percentile(values, 0.99) * 1000, 1) if values else None,
            "max_ms": round(max(values) * 1000, 1) if values else None, "count": len(values)}


# -- setup ------------------------------------------------------------------------------------------------------

async def setup_database(url: str) -> tuple[list[str], list[int]]:
    """Communities and demo people as `linju demo` loads them; returns the community codes and the people's ids."""
    from shared.demo import load_demo
    from shared.runtime import Database, load_config
    from shared.settings import Settings

    settings = Settings(database_url=url, _env_file=None)
    config = load_config(settings)
    database = Database.connect(settings)
    async with database.sessions() as session:
        people = await load_demo(session, config)
    await database.close()
    return [c.code for c in config.communities], [p.telegram_id for p in people]


async def add_residents(dsn: str, base: str, ids: list[int], communities: list[str]) -> None:
    """Residents who already agreed and chose a community, in the database and in the playground."""
    import aiohttp
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.executemany(
            "INSERT INTO users (platform, external_id, display_name, locale, community_code, roles, consent_at) "
            "VALUES ('telegram', $1, $2, 'zh', $3, '[]'::json, now()) ON CONFLICT DO NOTHING",
            [(str(i), f"居民{i}", communities[i % len(communities)]) for i in ids])
    finally:
        await connection.close()
    queue = list(ids)
    async with aiohttp.ClientSession() as http:
        async def one() -> None:
            while queue:
                user_id = queue.pop()
                async with http.post(f"{base}/playground/api/users",
                                     json={"id": user_id, "first_name": f"居民{user_id}"}) as response:
                    response.raise_for_status()
        await asyncio.gather(*(one() for _ in range(32)))


async def add_groups(base: str, url: str, people: list[int]) -> None:
    """The staff and volunteer groups, and the demo staff and volunteers (offers go to them)."""
    import aiohttp

    from shared.runtime import load_config
    from shared.settings import Settings

    config = load_config(Settings(database_url=url, _env_file=None))
    async with aiohttp.ClientSession() as http:
        for person in people:
            async with http.post(f"{base}/playground/api/users",
                                 json={"id": person, "first_name": f"demo{person}"}) as response:
                response.raise_for_status()
        for community in config.communities:
            for chat_id in (community.staff_chat_id, community.volunteer_chat_id):
                if chat_id is not None:
                    async with http.post(f"{base}/playground/api/chats",
                                         json={"id": chat_id, "title": f"{community.code} group",
                                               "type": "supergroup"}) as response:
                        response.raise_for_status()


async def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(what)


# -- 1. latency at a fixed offered load -------------------------------------------------------------------------

async def one_request(http, base: str, user_id: int, text: str) -> tuple[float | None, float | None]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    async with http.post(f"{base}/playground/api/send", json={"user_id": user_id, "text": text}) as response:
        after = (await response.json())["message_id"]
    ack = routed = None
    deadline = started + 30
    while routed is None and time.monotonic() < deadline:
        async with http.get(f"{base}/playground/api/messages",
                            params={"chat_id": str(user_id), "after": str(after), "wait": "10"}) as response:
            messages = (await response.json())["messages"]
        now = time.monotonic()
        for message in sorted(messages, key=lambda m: m["message_id"]):
            if not message["from_bot"] or message["message_id"] <= after:
                continue
            after = message["message_id"]
            if ack is None:
                ack = now - started
            else:
                routed = now - started
                break
    return ack, routed


async def offered_load(base: str, residents: list[int], corpus: list[str], rate: float,
                       seconds: float) -> dict[str, Any]:
    import aiohttp

    count = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        start = time.monotonic() + 0.2
        tasks = []
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one_request(http, base, residents[n], corpus[n % len(corpus)])))
        lateness = time.monotonic() - (start + (count - 1) / rate)
        results = await asyncio.gather(*tasks)
    acks = [a for a, _ in results if a is not None]
    routed = [r for _, r in results if r is not None]
    return {"requests": count, "offered_per_s": rate, "sender_late_s": round(lateness, 3),
            "ack": stats(acks), "routed": stats(routed),
            "no_ack": sum(1 for a, _ in results if a is None), "no_routed_reply": sum(1 for _, r in results if r is None),
            "_acks": acks, "_routed": routed}


async def stages(dsn: str, residents: list[int]) -> dict[str, Any]:
    """Where the time of the routed reply goes, from the database's own timestamps.

    stored → decided: the request row's creation to the resident's reply row (the bot's enqueue,
    the queue, intake); decided → sent: that row's creation to its `sent_at` (delivery).
    """
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT extract(epoch FROM o.created_at - r.created_at) AS intake, "
            "extract(epoch FROM o.sent_at - o.created_at) AS delivery "
            "FROM requests r JOIN users u ON u.id = r.user_id "
            "JOIN LATERAL (SELECT created_at, sent_at FROM outbox WHERE request_id = r.id AND chat_id = u.external_id "
            "              AND sent_at IS NOT NULL ORDER BY id LIMIT 1) o ON true "
            "WHERE u.external_id = ANY($1::text[])", [str(r) for r in residents])
        messages = await connection.fetch(
            "SELECT CASE WHEN o.chat_id = u.external_id THEN 'resident' WHEN o.chat_id LIKE '-%' THEN 'groups' "
            "ELSE 'other_people' END AS who, count(*) AS n FROM requests r JOIN users u ON u.id = r.user_id "
            "JOIN outbox o ON o.request_id = r.id WHERE u.external_id = ANY($1::text[]) GROUP BY 1",
            [str(r) for r in residents])
        unlinked = await connection.fetchval("SELECT count(*) FROM outbox WHERE request_id IS NULL")
        statuses = await connection.fetch(
            "SELECT r.status, count(*) AS n FROM requests r JOIN users u ON u.id = r.user_id "
            "WHERE u.external_id = ANY($1::text[]) GROUP BY 1", [str(r) for r in residents])
        unsent = await connection.fetch(
            "SELECT o.status, count(*) AS n FROM requests r JOIN users u ON u.id = r.user_id "
            "JOIN outbox o ON o.request_id = r.id AND o.chat_id = u.external_id "
            "WHERE u.external_id = ANY($1::text[]) AND o.status <> 'sent' GROUP BY 1", [str(r) for r in residents])
        silent = await connection.fetch(
            "SELECT r.id, r.status FROM requests r JOIN users u ON u.id = r.user_id "
            "WHERE u.external_id = ANY($1::text[]) AND NOT EXISTS "
            "(SELECT 1 FROM outbox o WHERE o.request_id = r.id AND o.chat_id = u.external_id)",
            [str(r) for r in residents])
        requests = await connection.fetchval(
            "SELECT count(*) FROM requests r JOIN users u ON u.id = r.user_id WHERE u.external_id = ANY($1::text[])",
            [str(r) for r in residents])
    finally:
        await connection.close()
    per_request = {r["who"]: round(r["n"] / max(1, len(residents)), 2) for r in messages}
    return {"stored_to_decided": stats([float(r["intake"]) for r in rows]),
            "decided_to_sent": stats([float(r["delivery"]) for r in rows]),
            "outbox_rows_per_request": per_request,
            "outbox_rows_without_request": unlinked,
            "residents": len(residents), "requests_stored": requests,
            "requests_by_status": {r["status"]: r["n"] for r in statuses},
            "resident_replies_not_sent": {r["status"]: r["n"] for r in unsent},
            "requests_without_resident_reply": [dict(r) for r in silent][:20]}


# -- 2. intake throughput ---------------------------------------------------------------------------------------

async def store_requests(url: str, dsn: str, residents: list[int], corpus: list[str], tag: str) -> list[int]:
    """Requests as the bot stores them (number, idempotency key), still `received`."""
    import asyncpg

    from shared.repo.requests import create_request
    from shared.runtime import Database
    from shared.settings import Settings

    connection = await asyncpg.connect(dsn)
    try:
        users = {int(r["external_id"]): (r["id"], r["community_code"]) for r in await connection.fetch(
            "SELECT id, external_id, community_code FROM users WHERE external_id = ANY($1::text[])",
            [str(r) for r in residents])}
    finally:
        await connection.close()
    database = Database.connect(Settings(database_url=url, _env_file=None), pool_size=8)
    ids: list[int] = []
    queue = list(enumerate(residents))

    async def one() -> None:
        while queue:
            n, resident = queue.pop()
            user_id, community = users[resident]
            async with database.sessions() as session:
                request, _ = await create_request(session, community_code=community, user_id=user_id,
                                                  text=corpus[n % len(corpus)], idempotency_key=f"bench:{tag}:{n}")
                ids.append(request.id)
                await session.commit()

    await asyncio.gather(*(one() for _ in range(8)))
    await database.close()
    return ids


def enqueue_classify(redis_url: str, ids: list[int]) -> None:
    from dramatiq.brokers.redis import RedisBroker

    from shared.queue.broker import redis_client
    from shared.queue.contracts import CLASSIFY_REQUEST, ClassifyRequest, send

    broker = RedisBroker(client=redis_client(redis_url))
    for request_id in ids:
        send(broker, CLASSIFY_REQUEST, ClassifyRequest(request_id=request_id))
    broker.close()


def heartbeats(redis_url: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.zcard("dramatiq:__heartbeats__"))
    finally:
        client.close()


async def intake_throughput(url: str, redis_url: str, residents: list[int], corpus: list[str], workers: int,
                            tag: str, env: dict[str, str], logs: Path) -> dict[str, Any]:
    import asyncpg

    dsn = asyncpg_dsn(url)
    ids = await store_requests(url, dsn, residents, corpus, tag)
    await asyncio.to_thread(wait_quiet)
    machine_before, wall_before = machine_cpu_seconds(), time.monotonic()
    before = heartbeats(redis_url)
    procs = [spawn([LINJU, "intake"], env=env, log_path=logs) for _ in range(workers)]
    try:
        async def started() -> bool:
            return heartbeats(redis_url) >= before + workers

        await wait_until(started, 60, "intake workers")
        await asyncio.to_thread(enqueue_classify, redis_url, ids)
        connection = await asyncpg.connect(dsn)
        try:
            async def drained() -> bool:
                left = await connection.fetchval("SELECT count(*) FROM requests WHERE id = ANY($1::bigint[]) "
                                                 "AND status = 'received'", ids)
                return left == 0
            await wait_until(drained, 600, "intake backlog")
            row = await connection.fetchrow(
                "SELECT count(*) AS events, count(DISTINCT request_id) AS requests, "
                "extract(epoch FROM min(created_at)) AS first, extract(epoch FROM max(created_at)) AS last "
                "FROM request_events WHERE kind IN ('classified', 'routed', 'redirected') "
                "AND request_id = ANY($1::bigint[])", ids)
            left = await connection.fetchval("SELECT count(*) FROM requests WHERE id = ANY($1::bigint[]) "
                                             "AND status = 'received'", ids)
        finally:
            await connection.close()
    finally:
        for proc in procs:
            stop(proc)
    seconds = float(row["last"]) - float(row["first"])
    machine = (machine_cpu_seconds() - machine_before) / (time.monotonic() - wall_before)
    return {"workers": workers, "machine_busy_cores": round(machine, 2), "requests": len(ids), "seconds": round(seconds, 2),
            "per_s": round((row["requests"] - 1) / seconds, 1) if seconds > 0 else None,
            "classified_events": row["events"], "classified_requests": row["requests"],
            "lost": len(ids) - row["requests"] + left, "doubled": row["events"] - row["requests"]}


# -- 3. dramatiq no-op ------------------------------------------------------------------------------------------

def noop_rate(redis_url: str, messages: int, env: dict[str, str], logs: Path) -> dict[str, Any]:
    """Queue `messages` no-op messages, then start two worker processes and time the drain."""
    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    from shared.queue.broker import redis_client

    namespace = "bench-noop"
    dramatiq_cli = str(Path(sys.executable).with_name("dramatiq"))
    noop_env = {**env, "NOOP_REDIS_URL": redis_url, "NOOP_NAMESPACE": namespace,
                "PYTHONPATH": f"{Path(__file__).resolve().parent}{os.pathsep}{REPO}"}
    client = redis.Redis.from_url(redis_url)
    broker = RedisBroker(client=redis_client(redis_url), namespace=namespace)
    broker.declare_queue("noop")
    started = time.monotonic()
    for _ in range(messages):
        broker.enqueue(dramatiq.Message(queue_name="noop", actor_name="noop", args=(), kwargs={}, options={}))
    enqueue_rate = messages / (time.monotonic() - started)
    broker.close()
    key = f"{namespace}:noop.msgs"
    wait_quiet()
    proc = spawn([dramatiq_cli, "_noop", "--processes", "2", "--threads", "8"], env=noop_env, log_path=logs)
    try:
        deadline = time.monotonic() + 600
        while client.hlen(key) >= messages and time.monotonic() < deadline:
            time.sleep(0.002)
        first, left = time.monotonic(), client.hlen(key)
        while client.hlen(key) > 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        seconds = time.monotonic() - first
    finally:
        stop(proc)
        client.close()
    return {"messages": messages, "processes": 2, "threads": 8, "drain_s": round(seconds, 2),
            "per_s": round(left / seconds, 1) if seconds > 0 else None, "enqueue_per_s": round(enqueue_rate, 1)}


# -- main -------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="offered requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each latency run")
    parser.add_argument("--runs", type=int, default=3, help="latency runs")
    parser.add_argument("--warmup", type=int, default=50, help="requests sent before the latency runs")
    parser.add_argument("--backlog", type=int, default=2000, help="requests per throughput run")
    parser.add_argument("--throughput-runs", type=int, default=3)
    parser.add_argument("--noop", type=int, default=20_000, help="no-op messages for dramatiq's own rate")
    parser.add_argument("--queue-poll-max-ms", type=int, default=None,
                        help="QUEUE_POLL_MAX_MS for the services: the longest a worker's idle queue poll backs off "
                             "(default: the settings' value)")
    parser.add_argument("--pin-responses", action="store_true",
                        help="what-if: run the services with aiogram's Response[...] classes pinned "
                             "(bench/_pin/sitecustomize.py), the fix proposed for the bot process")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()

    corpus = texts()
    redis_url = fresh_redis()
    RESULTS.mkdir(exist_ok=True)
    logs = RESULTS / "intake_e2e-services.log"
    logs.write_bytes(b"")
    result: dict[str, Any] = {"offered_per_s": args.rate, "seconds_per_run": args.seconds}
    playground, base = start_playground(rate_limits=False)
    try:
        with fresh_database("e2e") as url:
            dsn = asyncpg_dsn(url)
            communities, demo_people = asyncio.run(setup_database(url))
            latency_people = args.warmup + int(args.rate * args.seconds) * args.runs
            throughput_people = args.backlog * args.throughput_runs * 2
            residents = list(range(FIRST_RESIDENT, FIRST_RESIDENT + latency_people + throughput_people))
            log(f"setting up {len(residents)} residents")
            asyncio.run(add_residents(dsn, base, residents, communities))
            asyncio.run(add_groups(base, url, demo_people))
            env = service_env(url, redis_url, TELEGRAM_API_BASE=base, DELIVERY_SCALE="100")
            if args.pin_responses:
                env["PYTHONPATH"] = f"{Path(__file__).resolve().parent / '_pin'}{os.pathsep}{env['PYTHONPATH']}"
            result["pinned_responses"] = args.pin_responses
            if args.queue_poll_max_ms is not None:
                env["QUEUE_POLL_MAX_MS"] = str(args.queue_poll_max_ms)
            result["queue_poll_max_ms"] = queue_poll_max_ms(env)

            if not args.skip_latency:
                services = [spawn([LINJU, "bot"], env=env, log_path=logs),
                            spawn([LINJU, "intake"], env=env, log_path=logs),
                            spawn([LINJU, "deliver"], env=env, log_path=logs)]
                try:
                    async def polling() -> bool:
                        import aiohttp
                        async with aiohttp.ClientSession() as http, \
                                http.get(f"{base}/playground/api/stats") as response:
                            return (await response.json())["api_calls"].get("getUpdates", 0) > 0
                    asyncio.run(wait_until(polling, 60, "the bot to poll"))
                    time.sleep(3)  # workers up (imports, model load)
                    people = iter(residents)
                    warm = [next(people) for _ in range(args.warmup)]
                    asyncio.run(offered_load(base, warm, corpus, min(args.rate, 10.0), args.warmup / min(args.rate, 10.0)))
                    runs = []
                    measured: list[int] = []
                    meter = CpuMeter({"bot": [services[0].pid], "intake": [services[1].pid],
                                      "deliver": [services[2].pid], "playground": [playground.pid],
                                      "postgres": "postgres", "redis": "redis-server",
                                      "load_generator": [os.getpid()]})
                    meter.start()
                    wall = time.monotonic()
                    for run in range(args.runs):
                        batch = [next(people) for _ in range(int(args.rate * args.seconds))]
                        measured += batch
                        log(f"== latency run {run + 1}/{args.runs}: {args.rate:g} requests/s for {args.seconds:g} s")
                        wait_quiet()
                        run_meter = CpuMeter(meter.groups)
                        run_meter.start()
                        machine_before, wall_before = machine_cpu_seconds(), time.monotonic()
                        runs.append(asyncio.run(offered_load(base, batch, corpus[run * 997:] + corpus[:run * 997],
                                                             args.rate, args.seconds)))
                        run_wall = time.monotonic() - wall_before
                        run_cpu = run_meter.stop()
                        ours = sum(run_cpu.values()) / run_wall
                        runs[-1]["cpu_ms_per_request"] = {name: round(seconds * 1000 / len(batch), 2)
                                                          for name, seconds in run_cpu.items()}
                        machine = (machine_cpu_seconds() - machine_before) / run_wall
                        runs[-1]["busy_cores"] = round(ours, 2)
                        runs[-1]["other_processes_cores"] = round(max(0.0, machine - ours), 2)
                        log("  ", {k: v for k, v in runs[-1].items() if not k.startswith("_")})
                        time.sleep(2)
                    cpu = meter.stop()
                    wall = time.monotonic() - wall
                finally:
                    for proc in services:
                        stop(proc)
                all_acks = [a for r in runs for a in r["_acks"]]
                all_routed = [a for r in runs for a in r["_routed"]]
                result["latency"] = {
                    "services": "1 bot, 1 intake (4 threads), 1 deliver (8 threads); playground limits off",
                    "ack": stats(all_acks), "routed": stats(all_routed),
                    "ack_p99_ms_per_run": [r["ack"]["p99_ms"] for r in runs],
                    "routed_p99_ms_per_run": [r["routed"]["p99_ms"] for r in runs],
                    "ack_p99_ms_median_of_runs": statistics.median(r["ack"]["p99_ms"] for r in runs),
                    "routed_p99_ms_median_of_runs": statistics.median(r["routed"]["p99_ms"] for r in runs),
                    "no_ack": sum(r["no_ack"] for r in runs), "no_routed_reply": sum(r["no_routed_reply"] for r in runs),
                    "sender_late_s_max": max(r["sender_late_s"] for r in runs),
                    "busy_cores_per_run": [r["busy_cores"] for r in runs],
                    "cpu_ms_per_request_per_run": [r["cpu_ms_per_request"] for r in runs],
                    "other_processes_cores_per_run": [r["other_processes_cores"] for r in runs],
                    "stages": asyncio.run(stages(dsn, measured)),
                    "cpu_ms_per_request": {name: round(seconds * 1000 / len(measured), 2) for name, seconds in cpu.items()},
                    "cpu_cores_busy": round(sum(cpu.values()) / wall, 2),
                }
                residents = residents[latency_people:]

            if not args.skip_throughput:
                result["throughput"] = {}
                offset = 0
                for workers in (1, 2):
                    runs = []
                    for run in range(args.throughput_runs):
                        batch = residents[offset: offset + args.backlog]
                        offset += args.backlog
                        log(f"== throughput, {workers} intake process(es), run {run + 1}/{args.throughput_runs}")
                        runs.append(asyncio.run(intake_throughput(url, redis_url, batch, corpus, workers,
                                                                  f"w{workers}r{run}", env, logs)))
                        log("  ", runs[-1])
                    rates = [r["per_s"] for r in runs if r["per_s"]]
                    result["throughput"][f"{workers}_workers"] = {
                        "per_s_median": statistics.median(rates) if rates else None,
                        "per_s_min": min(rates) if rates else None,
                        "lost": sum(r["lost"] for r in runs), "doubled": sum(r["doubled"] for r in runs),
                        "runs": runs}
                log("== dramatiq no-op rate, 2 processes")
                noop = noop_rate(redis_url, args.noop, env, logs)
                log("  ", noop)
                result["dramatiq_noop"] = noop
                two = result["throughput"]["2_workers"]["per_s_median"]
                result["throughput"]["2_workers_ratio_to_noop"] = round(two / noop["per_s"], 4) if two else None
    finally:
        stop(playground)
    emit(result)


if __name__ == "__main__":
    main()
