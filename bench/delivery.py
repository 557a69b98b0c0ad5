"""Delivery benchmark (SPEC §6 "delivery"): N notifications to N chats against Telegram-like limits.

    python bench/delivery.py [--messages 10000] [--scale 10] [--workers 2] [--threads 8] [--runs 3]
                             [--restart-runs 1]

The playground runs as its own process with its rate limits on (30 msg/s per bot,
1/s per chat, 20/min per group, every rate multiplied by `--scale` so a run is
short); `--workers` real `linju deliver` processes share the limiter through
Redis (`DELIVERY_SCALE` set to the same factor). Each run inserts N outbox rows
for N fresh chats into a fresh PostgreSQL database and enqueues one delivery
message per row. `--runs` plain runs give the rate; then `--restart-runs` runs
stop the first worker (SIGTERM, as `docker compose restart` does) when half the
rows are sent and start it again, for "none lost across a worker restart".

Then, with `--latency-rate` > 0, notifications go out one by one at that rate (below the
limit) for `--latency-seconds`, and the time from enqueue to `sent_at` is reported
(median, p99): what a resident waits on delivery when the system is not saturated.
`--queue-poll-max-ms` sets `QUEUE_POLL_MAX_MS` for the workers (the longest back-off of an
idle queue poll; default: the settings' value).

Figures per run, then median over runs:
- rate: (N - 1) / (last sent_at - first sent_at), as a share of the (scaled) limit;
  per-second throughput over the run's whole seconds: median and p1 (slowest 1 %);
- 429s answered by the playground in total and after the first second of sending;
- duplicates (chats that got more than one message), lost (chats that got none, or
  rows not marked sent).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (LINJU, asyncpg_dsn, cpu_seconds, emit, fresh_database, fresh_redis, log,  # noqa: E402
                     CpuMeter, machine_cpu_seconds, percentile, queue_poll_max_ms, service_env, spawn, start_playground, stop,
                     wait_consumers, wait_quiet)

BOT_LIMIT = 30.0  # messages per second per bot, before scaling
FIRST_CHAT = 3_000_000


async def create_users(base: str, ids: range) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        queue = list(ids)

        async def worker() -> None:
            while queue:
                user_id = queue.pop()
                async with http.post(f"{base}/playground/api/users",
                                     json={"id": user_id, "first_name": f"居民{user_id}"}) as response:
                    response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(32)))


async def insert_rows(dsn: str, chats: range, tag: str) -> list[int]:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        rows = [(f"bench:{tag}:{chat}", "telegram", str(chat), f"社区通知 {tag}-{chat}：明天上午九点至十二点停水，请提前储水。",
                 "[]", "pending", 0) for chat in chats]
        await connection.executemany(
            "INSERT INTO outbox (key, platform, chat_id, text, options, status, attempts) "
            "VALUES ($1, $2, $3, $4, $5::json, $6, $7)", rows)
        return [r["id"] for r in await connection.fetch("SELECT id FROM outbox WHERE key LIKE $1 ORDER BY id",
                                                        f"bench:{tag}:%")]
    finally:
        await connection.close()


def enqueue(redis_url: str, ids: list[int]) -> float:
    from dramatiq.brokers.redis import RedisBroker

    from shared.queue.broker import redis_client
    from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification, send

    broker = RedisBroker(client=redis_client(redis_url))
    started = time.monotonic()
    for outbox_id in ids:
        send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))
    broker.close()
    return time.monotonic() - started


async def get_json(base: str, path: str) -> Any:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(base + path) as response:
        return await response.json()


def cpu_of(procs: list) -> float:  # type: ignore[type-arg]
    return sum(cpu_seconds(p.pid) or 0.0 for p in procs if p.poll() is None)


async def one_run(args: argparse.Namespace, run: int, dsn: str, base: str, redis_url: str,
                  workers: list, start_worker, playground, restart: bool) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import asyncpg

    n = args.messages
    chats = range(FIRST_CHAT + run * n, FIRST_CHAT + (run + 1) * n)
    await create_users(base, chats)
    tag = f"r{run}"
    ids = await insert_rows(dsn, chats, tag)
    before = await get_json(base, "/playground/api/stats")
    limit = BOT_LIMIT * args.scale
    connection = await asyncpg.connect(dsn)
    where = "key LIKE $1"
    like = f"bench:{tag}:%"
    quiet = wait_quiet()
    rest = CpuMeter({"bench": [os.getpid()], "postgres": "postgres", "redis": "redis-server"})
    rest.start()
    machine_before, wall_before = machine_cpu_seconds(), time.monotonic()
    cpu_before = cpu_of(workers), cpu_of([playground])
    enqueue_task = asyncio.create_task(asyncio.to_thread(enqueue, redis_url, ids))
    first: float | None = None
    too_many_at_1s: int | None = None
    restarted = False
    stop_seconds = None
    deadline = time.monotonic() + n / limit * 4 + 120
    try:
        while time.monotonic() < deadline:
            row = await connection.fetchrow(
                f"SELECT count(*) FILTER (WHERE status IN ('sent', 'failed')) AS done, "
                f"count(*) FILTER (WHERE status = 'sent') AS sent, "
                f"extract(epoch FROM min(sent_at)) AS first FROM outbox WHERE {where}", like)
            now = time.time()
            if first is None and row["first"] is not None:
                first = float(row["first"])
            if first is not None and too_many_at_1s is None and now >= first + 1.0:
                too_many_at_1s = (await get_json(base, "/playground/api/stats"))["too_many_requests"]
            if restart and not restarted and row["sent"] >= n // 2:
                restarted = True
                log(f"   restarting worker 0 at {row['sent']} sent")
                cpu_before = cpu_before[0] - cpu_of(workers[:1]), cpu_before[1]
                stopping = time.monotonic()
                await asyncio.to_thread(stop, workers[0])
                stop_seconds = round(time.monotonic() - stopping, 2)
                workers[0] = start_worker(0)
            if row["done"] >= n:
                break
            await asyncio.sleep(0.1)
        cpu_after = cpu_of(workers), cpu_of([playground])
        wall = time.monotonic() - wall_before
        machine = (machine_cpu_seconds() - machine_before) / wall
        servers = rest.stop()
        ours = (cpu_after[0] - cpu_before[0] + cpu_after[1] - cpu_before[1] + sum(servers.values())) / wall
        enqueue_seconds = await enqueue_task
        await asyncio.sleep(1.0)  # anything still in flight would show up as a duplicate
        sent_at = [float(r["t"]) for r in await connection.fetch(
            f"SELECT extract(epoch FROM sent_at) AS t FROM outbox WHERE {where} AND status = 'sent' ORDER BY sent_at",
            like)]
        statuses = dict(await connection.fetch(f"SELECT status, count(*) FROM outbox WHERE {where} GROUP BY status",
                                               like))
    finally:
        await connection.close()
    after = await get_json(base, "/playground/api/stats")
    per_chat = after["messages_per_chat"]
    received = [per_chat.get(str(chat), {}).get("from_bot", 0) for chat in chats]
    duplicates = sum(max(0, c - 1) for c in received)
    lost_chats = sum(1 for c in received if c == 0)
    too_many = after["too_many_requests"] - before["too_many_requests"]
    after_first_second = after["too_many_requests"] - (too_many_at_1s if too_many_at_1s is not None
                                                       else before["too_many_requests"])
    rate = (len(sent_at) - 1) / (sent_at[-1] - sent_at[0]) if len(sent_at) > 1 else 0.0
    seconds: dict[int, int] = {}
    for t in sent_at:
        seconds[int(t - sent_at[0])] = seconds.get(int(t - sent_at[0]), 0) + 1
    whole = [seconds.get(s, 0) for s in range(int(sent_at[-1] - sent_at[0]))] if sent_at else []
    return {
        "messages": n,
        "limit_per_s": limit,
        "rate_per_s": round(rate, 1),
        "share_of_limit": round(rate / limit, 4),
        "per_second_median": statistics.median(whole) if whole else None,
        "per_second_p1": percentile(whole, 0.01),
        "too_many_requests": too_many,
        "too_many_after_first_second": after_first_second,
        "duplicates": duplicates,
        "lost": max(lost_chats, n - statuses.get("sent", 0)),
        "statuses": statuses,
        "enqueue_s": round(enqueue_seconds, 2),
        "worker_cpu_ms_per_message": round((cpu_after[0] - cpu_before[0]) * 1000 / n, 2),
        "playground_cpu_ms_per_message": round((cpu_after[1] - cpu_before[1]) * 1000 / n, 2),
        "seconds": round(sent_at[-1] - sent_at[0], 2) if sent_at else None,
        "machine_busy_cores": round(machine, 2),
        "postgres_cores": round(servers["postgres"] / wall, 2), "redis_cores": round(servers["redis"] / wall, 2),
        "other_processes_cores": round(max(0.0, machine - ours), 2),
        "busy_cores_before_start": round(quiet, 2),
        "worker_restarted": restarted,
        "worker_stop_s": stop_seconds,
    }


async def latency_run(args: argparse.Namespace, dsn: str, base: str, redis_url: str, first_chat: int) -> dict[str, Any]:
    import asyncpg
    from dramatiq.brokers.redis import RedisBroker

    from shared.queue.broker import redis_client
    from shared.queue.contracts import DELIVER_NOTIFICATION, DeliverNotification, send

    n = int(args.latency_rate * args.latency_seconds)
    chats = range(first_chat, first_chat + n)
    await create_users(base, chats)
    ids = await insert_rows(dsn, chats, "lat")
    broker = RedisBroker(client=redis_client(redis_url))
    enqueued: dict[int, float] = {}

    def paced() -> None:
        start = time.time() + 0.2
        for k, outbox_id in enumerate(ids):
            delay = start + k / args.latency_rate - time.time()
            if delay > 0:
                time.sleep(delay)
            enqueued[outbox_id] = time.time()
            send(broker, DELIVER_NOTIFICATION, DeliverNotification(outbox_id=outbox_id))

    await asyncio.to_thread(wait_quiet)
    await asyncio.to_thread(paced)
    broker.close()
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if await connection.fetchval("SELECT count(*) FROM outbox WHERE key LIKE 'bench:lat:%' "
                                         "AND status = 'pending'") == 0:
                break
            await asyncio.sleep(0.1)
        sent = {r["id"]: float(r["t"]) for r in await connection.fetch(
            "SELECT id, extract(epoch FROM sent_at) AS t FROM outbox WHERE key LIKE 'bench:lat:%' AND sent_at IS NOT NULL")}
    finally:
        await connection.close()
    waits = [sent[i] - enqueued[i] for i in ids if i in sent]
    return {"rate_per_s": args.latency_rate, "messages": n, "sent": len(waits),
            "enqueue_to_sent_median_ms": round(statistics.median(waits) * 1000, 1) if waits else None,
            "enqueue_to_sent_p99_ms": round(percentile(waits, 0.99) * 1000, 1) if waits else None,
            "enqueue_to_sent_max_ms": round(max(waits) * 1000, 1) if waits else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=10.0, help="multiply every Telegram limit (playground and ours)")
    parser.add_argument("--workers", type=int, default=2, help="`linju deliver` processes")
    parser.add_argument("--threads", type=int, default=8, help="worker threads per process")
    parser.add_argument("--runs", type=int, default=3, help="plain runs (the rate figures)")
    parser.add_argument("--restart-runs", type=int, default=1,
                        help="further runs that stop and start one worker half-way through")
    parser.add_argument("--latency-rate", type=float, default=100.0, help="0 to skip the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--queue-poll-max-ms", type=int, default=None)
    args = parser.parse_args()

    redis_url = fresh_redis()
    playground, base = start_playground(rate_limits=True, scale=args.scale)
    logs = Path(__file__).resolve().parent / "results" / "delivery-workers.log"
    logs.parent.mkdir(exist_ok=True)
    logs.write_bytes(b"")
    runs: list[dict[str, Any]] = []
    restart_runs: list[dict[str, Any]] = []
    latency: dict[str, Any] | None = None
    try:
        with fresh_database("delivery") as url:
            env = service_env(url, redis_url, TELEGRAM_API_BASE=base, DELIVERY_SCALE=str(args.scale))
            if args.queue_poll_max_ms is not None:
                env["QUEUE_POLL_MAX_MS"] = str(args.queue_poll_max_ms)

            def start_worker(_index: int):  # type: ignore[no-untyped-def]
                return spawn([LINJU, "deliver", "--threads", str(args.threads)], env=env, log_path=logs)

            workers = [start_worker(i) for i in range(args.workers)]
            try:
                wait_consumers(redis_url, args.workers)
                total = args.runs + args.restart_runs
                for run in range(total):
                    restart = run >= args.runs
                    log(f"== run {run + 1}/{total}: {args.messages} notifications, limit {BOT_LIMIT * args.scale:g}/s"
                        + (", one worker restarted half-way" if restart else ""))
                    result = asyncio.run(one_run(args, run, asyncpg_dsn(url), base, redis_url, workers, start_worker,
                                                 playground, restart))
                    log("  ", result)
                    (restart_runs if restart else runs).append(result)
                    time.sleep(2)  # let the buckets refill between runs
                if args.latency_rate > 0:
                    log(f"== latency: {args.latency_rate:g} notifications/s for {args.latency_seconds:g} s")
                    latency = asyncio.run(latency_run(args, asyncpg_dsn(url), base, redis_url,
                                                      FIRST_CHAT + (total + 1) * args.messages))
                    log("  ", latency)
            finally:
                for worker in workers:
                    stop(worker)
    finally:
        stop(playground)

    def med(key: str) -> Any:
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    every = runs + restart_runs
    emit({
        "messages": args.messages, "scale": args.scale, "workers": args.workers, "threads": args.threads,
        "runs": len(runs), "limit_per_s": BOT_LIMIT * args.scale,
        "share_of_limit_median": med("share_of_limit"),
        "share_of_limit_min": min((r["share_of_limit"] for r in runs), default=None),
        "rate_per_s_median": med("rate_per_s"),
        "per_second_median": med("per_second_median"), "per_second_p1_median": med("per_second_p1"),
        "worker_cpu_ms_per_message_median": med("worker_cpu_ms_per_message"),
        "too_many_after_first_second_total": sum(r["too_many_after_first_second"] for r in every),
        "too_many_total": sum(r["too_many_requests"] for r in every),
        "duplicates_total": sum(r["duplicates"] for r in every),
        "lost_total": sum(r["lost"] for r in every),
        "other_processes_cores_per_run": [r["other_processes_cores"] for r in every],
        "restart_runs": len(restart_runs),
        "restart_share_of_limit": [r["share_of_limit"] for r in restart_runs],
        "restart_duplicates": sum(r["duplicates"] for r in restart_runs),
        "restart_lost": sum(r["lost"] for r in restart_runs),
        "queue_poll_max_ms": queue_poll_max_ms(env),
        "latency": latency,
        "per_run": runs, "per_restart_run": restart_runs,
    })


if __name__ == "__main__":
    main()
