"""Shared helpers of the benchmarks (not a benchmark: the runner skips names starting with "_").

- a fresh PostgreSQL database per benchmark run (`linju_bench_<hex>`, migrated with
  `shared.db.migrate.upgrade`, dropped at the end);
- a Redis database of its own (`BENCH_REDIS_URL`, default db 9, flushed at start) so
  benchmarks never touch the test suite's (db 15) or a local `make run`'s (db 0);
- the playground and `linju` services as real subprocesses, and /proc readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
LINJU = str(Path(sys.executable).with_name("linju"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(*parts: object) -> None:
    """Progress goes to stderr; stdout's last line is the JSON result."""
    print(*parts, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- PostgreSQL -------------------------------------------------------------------------------------------------

async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_database(tag: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database; yields its SQLAlchemy URL and drops it afterwards."""
    from shared.db.migrate import upgrade

    name = f"linju_bench_{tag}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        if not os.environ.get("BENCH_KEEP_DB"):
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


# -- Redis ------------------------------------------------------------------------------------------------------

def fresh_redis() -> str:
    """The benchmark's own Redis database, emptied."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        client.ping()
        client.flushdb()
    finally:
        client.close()
    return REDIS_URL


# -- processes --------------------------------------------------------------------------------------------------

def service_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DELIVERY_", "TELEGRAM_", "PLAYGROUND_"))}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, BROKER="redis",
               LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
               LOG_FORMAT="json", PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def queue_poll_max_ms(env: dict[str, str]) -> int:
    """The idle-queue back-off bound the services started with `env` use."""
    from shared.settings import Settings

    return int(env.get("QUEUE_POLL_MAX_MS") or Settings(_env_file=None).queue_poll_max_ms)


def spawn(args: list[str], env: dict[str, str] | None = None, log_path: Path | None = None) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT if log_path else out,
                            start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def start_playground(*, rate_limits: bool, scale: float = 1.0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [sys.executable, "-m", "services.playground", "--port", str(port), "--log-level", "WARNING"]
    if rate_limits:
        args += ["--rate-limits", "--scale", str(scale)]
    proc = spawn(args, env={**os.environ, "PYTHONPATH": str(REPO)})
    base = f"http://127.0.0.1:{port}"
    wait_port(port, proc)
    return proc, base


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


# -- /proc ------------------------------------------------------------------------------------------------------

def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE / 2**20
    except OSError:
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (its threads included)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """Every descendant process of `pid`."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{tid}/children") as handle:
                    kids = [int(k) for k in handle.read().split()]
                found += kids
                todo += kids
        except OSError:
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def emit(result: dict[str, Any]) -> None:
    """The benchmark's figures: one JSON object, the last line on stdout."""
    print(json.dumps(result, ensure_ascii=False), flush=True)


def pids_named(*names: str) -> list[int]:
    """Processes whose command name (comm) is one of `names` (e.g. the database and Redis servers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() in names:
                        found.append(int(entry))
            except OSError:
                continue
    return found


class CpuMeter:
    """CPU seconds used by groups of processes between `start()` and `stop()`.

    A group is a list of pids, or a command name (e.g. "postgres") whose processes are
    looked up at both ends, so a database backend that opens during the run counts too.
    """

    def __init__(self, groups: dict[str, list[int] | str]) -> None:
        self.groups = groups
        self.before: dict[str, dict[int, float]] = {}

    def _read(self) -> dict[str, dict[int, float]]:
        found = {}
        for name, pids in self.groups.items():
            pids = pids_named(pids) if isinstance(pids, str) else pids
            found[name] = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
        return found

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        return {name: sum(cpu - self.before.get(name, {}).get(pid, 0.0) for pid, cpu in now.items())
                for name, now in after.items()}


def wait_consumers(redis_url: str, count: int, namespace: str = "dramatiq", timeout: float = 60.0) -> None:
    """Until `count` dramatiq workers have polled the Redis broker (their heartbeats), i.e. are consuming."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while client.zcard(f"{namespace}:__heartbeats__") < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} dramatiq workers are consuming")
            time.sleep(0.1)
    finally:
        client.close()


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (every core, every process)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def wait_quiet(max_busy_cores: float = 0.3, window: float = 3.0, timeout: float = 600.0) -> float:
    """Wait until the machine is nearly idle (other work would distort the figures); returns the busy cores seen.

    The machine may be shared (another test run, another benchmark): figures taken while
    something else runs are not this system's. Gives up after `timeout` and says so.
    """
    deadline = time.monotonic() + timeout
    while True:
        before = machine_cpu_seconds()
        time.sleep(window)
        busy = (machine_cpu_seconds() - before) / window
        if busy <= max_busy_cores:
            return busy
        if time.monotonic() > deadline:
            log(f"   the machine stayed busy ({busy:.2f} cores); measuring anyway")
            return busy
        log(f"   waiting for a quiet machine ({busy:.2f} cores busy)")
