"""Footprint benchmark (SPEC §6 "footprint"): memory and idle CPU of `make run`.

    python bench/footprint.py [--idle-seconds 60] [--requests 100] [--after-seconds 30] [--modes redis,in-process]

Starts `linju run` (what `make run` runs: SQLite file database, demo data, intake and
delivery workers, scheduler, bot and the playground, all in one process) in a fresh
directory, once per mode:
- `redis`: Redis answers at REDIS_URL (the benchmark's own Redis database);
- `in-process`: REDIS_URL empty, so the in-process broker is used.

Figures per mode: resident memory (RSS) of every process of the run after start; idle
CPU over `--idle-seconds` right after that (% of one core and % of the machine); RSS
after `--requests` resident requests through the playground (onboarding included); and
the CPU of the `--after-seconds` that follow the requests (not idle: the staff group's
cards are still going out at Telegram's 20 a minute, see docs/delivery.md). The Redis
server's own RSS is reported beside it (it is not a process of `make run`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (LINJU, REPO, children, cmdline, cpu_seconds, emit, free_port, fresh_redis, log,  # noqa: E402
                     pids_named, rss_mb, spawn, stop, wait_port)


def tree(pid: int) -> list[int]:
    return [pid, *children(pid)]


def cpu_over(pid: int, seconds: float) -> tuple[float, float]:
    """CPU seconds the process tree uses over `seconds` of wall time, and the window's length."""
    pids = tree(pid)
    before, started = sum(cpu_seconds(p) or 0.0 for p in pids), time.monotonic()
    time.sleep(seconds)
    return sum(cpu_seconds(p) or 0.0 for p in pids) - before, time.monotonic() - started


def memory(pid: int) -> dict[str, Any]:
    processes = [{"pid": p, "cmd": cmdline(p)[:80], "rss_mb": round(rss_mb(p) or 0.0, 1)} for p in tree(pid)]
    return {"processes": processes, "total_rss_mb": round(sum(p["rss_mb"] for p in processes), 1)}


async def exercise(base: str, requests: int) -> dict[str, Any]:
    """Residents onboard (/start, consent, community, language) and report problems; wait for each reply."""
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async def post(path: str, body: dict) -> Any:
            async with http.post(base + path, json=body) as response:
                response.raise_for_status()
                return await response.json()

        async def next_bot(chat: int, after: int, timeout: float = 20.0) -> dict[str, Any]:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                async with http.get(f"{base}/playground/api/messages",
                                    params={"chat_id": str(chat), "after": str(after), "wait": "5"}) as response:
                    messages = [m for m in (await response.json())["messages"]
                                if m["from_bot"] and m["message_id"] > after]
                if messages:
                    return min(messages, key=lambda m: m["message_id"])
            raise TimeoutError(f"no answer in chat {chat}")

        async def with_button(chat: int, after: int, prefix: str) -> tuple[dict[str, Any], str]:
            """The next bot message offering a button whose action starts with `prefix`."""
            while True:
                message = await next_bot(chat, after)
                after = message["message_id"]
                for row in message["buttons"] or []:
                    for button in row:
                        if button["callback_data"].startswith(prefix):
                            return message, button["callback_data"]

        async def press(chat: int, after: int, prefix: str) -> int:
            message, data = await with_button(chat, after, prefix)
            await post("/playground/api/press", {"user_id": chat, "chat_id": chat,
                                                 "message_id": message["message_id"], "callback_data": data})
            return message["message_id"]

        per_resident = 5
        residents = [7_100_000 + n for n in range((requests + per_resident - 1) // per_resident)]
        started = time.monotonic()
        answered = 0

        async def resident(chat: int, count: int) -> int:
            await post("/playground/api/users", {"id": chat, "first_name": f"居民{chat}", "language_code": "zh"})
            after = (await post("/playground/api/send", {"user_id": chat, "text": "/start"}))["message_id"]
            for prefix in ("consent:yes", "comm:", "lang:zh"):
                after = await press(chat, after, prefix)
            while True:  # everything onboarding says, up to the main menu
                try:
                    after = (await next_bot(chat, after, timeout=1.0))["message_id"]
                except TimeoutError:
                    break
            done = 0
            for n in range(count):
                sent = await post("/playground/api/send", {"user_id": chat, "text": f"楼道的灯坏了好几天了 {n}号楼"})
                ack = await next_bot(chat, sent["message_id"])
                await next_bot(chat, ack["message_id"])
                done += 1
            return done

        counts = [min(per_resident, requests - i * per_resident) for i in range(len(residents))]
        results = await asyncio.gather(*(resident(chat, count) for chat, count in zip(residents, counts)),
                                       return_exceptions=True)
        answered = sum(r for r in results if isinstance(r, int))
        errors = [repr(r)[:120] for r in results if isinstance(r, BaseException)]
        return {"residents": len(residents), "requests_answered": answered, "seconds": round(time.monotonic() - started, 1),
                "errors": errors[:3]}


def one_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="linju-footprint-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DELIVERY_", "TELEGRAM_", "PLAYGROUND_", "DATABASE_", "REDIS_", "BROKER"))}
    env.update(DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'linju.db'}", PLAYGROUND_PORT=str(port),
               LOG_LEVEL="WARNING", PYTHONPATH=str(REPO),
               REDIS_URL=fresh_redis() if mode == "redis" else "")
    log(f"== {mode}: linju run in {workdir}")
    started = time.monotonic()
    proc = spawn([LINJU, "run"], env=env, log_path=workdir / "run.log")
    try:
        wait_port(port, proc, timeout=120)
        startup = time.monotonic() - started
        time.sleep(args.settle)
        after_start = memory(proc.pid)
        idle, window = cpu_over(proc.pid, args.idle_seconds)
        base = f"http://127.0.0.1:{port}"
        load = asyncio.run(exercise(base, args.requests)) if args.requests else None
        time.sleep(args.settle)
        after_load = memory(proc.pid)
        after_cpu, after_window = cpu_over(proc.pid, args.after_seconds)
        redis_rss = [round(rss_mb(p) or 0.0, 1) for p in pids_named("redis-server")] if mode == "redis" else []
    finally:
        stop(proc, timeout=30)
        if not os.environ.get("BENCH_KEEP_DB"):
            shutil.rmtree(workdir, ignore_errors=True)
    return {
        "startup_s": round(startup, 1),
        "rss_after_start_mb": after_start["total_rss_mb"],
        "rss_after_load_mb": after_load["total_rss_mb"],
        "processes": after_load["processes"],
        "load": load,
        "idle_window_s": round(window, 1),
        "idle_cpu_percent_of_one_core": round(idle / window * 100, 2),
        "idle_cpu_percent_of_machine": round(idle / window * 100 / (os.cpu_count() or 1), 2),
        "after_requests_window_s": round(after_window, 1),
        "after_requests_cpu_percent_of_one_core": round(after_cpu / after_window * 100, 2) if after_window else None,
        "redis_server_rss_mb": redis_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait before each memory reading")
    parser.add_argument("--requests", type=int, default=100, help="resident requests between the two readings")
    parser.add_argument("--after-seconds", type=float, default=30.0, help="CPU window after the requests")
    parser.add_argument("--modes", default="redis,in-process")
    args = parser.parse_args()
    if not Path(LINJU).exists():
        raise SystemExit(f"{LINJU} not found: run `make install` first")
    result: dict[str, Any] = {"idle_seconds": args.idle_seconds, "requests": args.requests}
    for mode in args.modes.split(","):
        result[mode.strip()] = one_mode(mode.strip(), args)
        log("  ", {k: v for k, v in result[mode.strip()].items() if k != "processes"})
    emit(result)


if __name__ == "__main__":
    main()
