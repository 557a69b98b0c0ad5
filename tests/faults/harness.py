"""Real processes for fault tests: the `linju` services, the playground, a TCP proxy we can cut.

Everything a fault test starts is registered with its `Stack` and stopped by it
(SIGTERM, then SIGKILL), whatever happens in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from shared.settings import Settings

# The settings the fault tests pass; everything else a developer's environment sets for
# Linju (a real TELEGRAM_BOT_TOKEN above all) is removed from the children's environment.
SETTING_NAMES = {name.upper() for name in Settings.model_fields}

# The Redis broker takes a dead worker's unacknowledged messages back once its heartbeat is
# older than BROKER_HEARTBEAT_TIMEOUT_MS, during "maintenance", which runs on
# BROKER_MAINTENANCE_CHANCE of every million broker commands (dramatiq's scale). The tests
# make both prompt; production keeps the defaults (60000 ms, 1000 per million).
FAST_RECOVERY = {
    "BROKER_HEARTBEAT_TIMEOUT_MS": "2000",
    "BROKER_MAINTENANCE_CHANCE": "1000000",
    "SCHEDULER_TICK_SECONDS": "0.5",
    "STUCK_REQUEST_SECONDS": "2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child: SIGKILL it when the test process dies, however it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def linju_command() -> list[str]:
    script = Path(sys.executable).with_name("linju")
    return [str(script)] if script.exists() else [sys.executable, "-m", "services.cli"]


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float, interval: float = 0.1,
                     what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    async def wait_for_log(self, needle: str, timeout: float = 30.0) -> None:
        async def seen() -> bool:
            if not self.alive() and needle not in self.log():
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")
            return needle in self.log()

        try:
            await eventually(seen, timeout=timeout, interval=0.05, what=f"{self.name} to log {needle!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log ---\n{self.tail()}") from None

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log()))

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill9(self) -> None:
        """kill -9: no shutdown code runs, nothing is acknowledged or released."""
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM (after SIGCONT: a stopped process cannot handle it), once."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGTERM)

    def reap(self, timeout: float = 5.0) -> None:
        """Wait for the process to exit; SIGKILL it after `timeout` seconds."""
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 5.0) -> None:
        self.terminate()
        self.reap(timeout)


@dataclass
class Stack:
    """One scenario's system: its database, its Redis, a playground and `linju` service processes."""

    workdir: Path
    database_url: str
    redis_url: str
    base_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    playground_base: str | None = None

    def env(self, **overrides: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if key not in SETTING_NAMES and not key.startswith("DELIVERY_")}
        env.update({
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "BROKER": "redis",
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "HEALTH_PORT": "0",
            **FAST_RECOVERY,
            # Delivery's own Telegram limits (shared.queue.ratelimit) are not what these tests are
            # about, except where a test sets them: 100x Telegram's rates keeps them out of the way.
            "DELIVERY_SCALE": "100",
            "MAX_REQUESTS_PER_HOUR": "1000",
        })
        if self.playground_base:
            env["TELEGRAM_API_BASE"] = self.playground_base
        env.update(self.base_env)
        env.update(overrides)
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        index = sum(1 for p in self.procs if p.name.split("#")[0] == name) + 1
        label = f"{name}#{index}"
        log_path = self.workdir / f"{label.replace('#', '-')}.log"
        handle = open(log_path, "wb")  # noqa: SIM115 - the child owns it
        try:
            popen = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            handle.close()
        proc = Proc(label, popen, log_path)
        self.procs.append(proc)
        return proc

    async def start(self, service: str, *args: str, ready: str | None = None, **env: str) -> Proc:
        """Start `linju <service> [args]` and wait for the line that says it is serving."""
        proc = self.spawn(service, [*linju_command(), service, *args], self.env(**env))
        ready = ready or {"intake": "worker started", "deliver": "worker started", "bot": "bot: polling mode",
                          "scheduler": "scheduler started"}.get(service)
        if ready:
            await proc.wait_for_log(ready, timeout=45)
        return proc

    def run(self, *args: str, **env: str) -> str:
        """Run a one-shot `linju` command (migrate, demo) and return its output."""
        done = subprocess.run([*linju_command(), *args], env=self.env(**env), cwd=self.workdir, capture_output=True,
                              timeout=120, check=False)
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        assert done.returncode == 0, f"linju {' '.join(args)} failed:\n{output}"
        return output

    async def start_playground(self, *, rate_limits: bool = False, scale: float = 1.0) -> "PlaygroundClient":
        port = free_port()
        argv = [sys.executable, "-m", "services.playground", "--port", str(port), "--log-level", "WARNING"]
        if rate_limits:
            argv += ["--rate-limits", "--scale", str(scale)]
        proc = self.spawn("playground", argv, self.env())
        await proc.wait_for_log("Playground: http://", timeout=30)
        self.playground_base = f"http://127.0.0.1:{port}"
        return PlaygroundClient(self.playground_base, proc)

    def close(self) -> None:
        """SIGTERM to everything at once, then wait (SIGKILL whatever does not stop within 5 s)."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.reap()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (exit {p.popen.returncode}) ---\n{p.tail(60)}" for p in self.procs)


class PlaygroundClient:
    """The playground's people API, as the tests use it."""

    def __init__(self, base: str, proc: Proc):
        self.base, self.proc = base, proc
        self._http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.http.post(self.base + "/playground/api/" + path, json=body) as response:
            data = await response.json()
            assert response.status == 200, (path, response.status, data)
            return data

    async def get(self, path: str, **params: Any) -> Any:
        async with self.http.get(self.base + "/playground/api/" + path,
                                 params={k: str(v) for k, v in params.items()}) as response:
            data = await response.json()
            assert response.status == 200, (path, response.status, data)
            return data

    async def user(self, user_id: int, name: str, *, blocked: bool = False) -> None:
        await self.post("users", {"id": user_id, "first_name": name, "language_code": "zh", "blocked": blocked})

    async def group(self, chat_id: int, title: str) -> None:
        await self.post("chats", {"id": chat_id, "title": title, "type": "supergroup"})

    async def send(self, user_id: int, text: str) -> int:
        return (await self.post("send", {"user_id": user_id, "text": text}))["message_id"]

    async def messages(self, chat_id: int | str) -> list[dict[str, Any]]:
        return (await self.get("messages", chat_id=chat_id, after=0))["messages"]

    async def bot_texts(self, chat_id: int | str) -> list[str]:
        return [m["text"] for m in await self.messages(chat_id) if m["from_bot"]]

    async def stats(self) -> dict[str, Any]:
        return await self.get("stats")

    async def seed(self, config) -> None:  # type: ignore[no-untyped-def]
        """The chats the demo data can send to: every demo person, every staff and volunteer group."""
        from shared.demo import demo_people

        for person in demo_people(config):
            await self.user(person.telegram_id, person.name)
        for community in config.communities:
            for chat_id in (community.staff_chat_id, getattr(community, "volunteer_chat_id", None)):
                if chat_id is not None:
                    await self.group(chat_id, f"{community.code} {chat_id}")


class TcpProxy:
    """A TCP proxy in its own thread, in front of a server we must not stop (PostgreSQL).

    `down()` refuses new connections and resets the open ones, which is what clients see
    when the server goes away; `up()` listens again on the same port.
    """

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tcp-proxy", daemon=True)
        self.server: asyncio.base_events.Server | None = None
        self.transports: set[asyncio.BaseTransport] = set()
        self.connections = 0
        self.thread.start()

    def _call(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        pair = {client_writer.transport, server_writer.transport}
        self.transports |= pair
        try:
            await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))
        finally:
            self.transports -= pair

    async def _up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _down(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for transport in list(self.transports):
            transport.abort()
        self.transports.clear()

    def up(self) -> None:
        self._call(self._up())

    def down(self) -> None:
        self._call(self._down())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class PrivateRedis:
    """A redis-server of our own on a free port, started like CI starts the shared one.

    Restarting it is a real Redis restart (no persistence: queued messages are gone, as in
    the harshest case) without disturbing anything else that uses the shared server.
    """

    def __init__(self, workdir: Path):
        self.binary = shutil.which("redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.binary, "redis-server is not installed"
        subprocess.run([self.binary, "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(self.port),
                        "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                        "--pidfile", str(self.workdir / "redis.pid"),
                        "--logfile", str(self.workdir / "redis.log")], check=True, timeout=30)
        deadline = time.monotonic() + 20
        while not self.answers():
            if time.monotonic() > deadline:
                raise AssertionError("private redis-server did not answer PING")
            time.sleep(0.05)

    def answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def shutdown(self) -> None:
        """SHUTDOWN NOSAVE (on a raw socket: a client library would retry it), then wait for the port to close."""
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"SHUTDOWN NOSAVE\r\n")
            with contextlib.suppress(OSError):
                sock.recv(64)
        deadline = time.monotonic() + 10
        while port_open("127.0.0.1", self.port, timeout=0.2):
            if time.monotonic() > deadline:
                raise AssertionError("redis-server did not shut down")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.answers():
            self.shutdown()


class Db:
    """The test's own view of the scenario's database (plain SQL for checks, repos for set-up)."""

    def __init__(self, database_url: str):
        from shared.runtime import Database

        self.database = Database.connect(Settings(database_url=database_url, _env_file=None), pool_size=2)

    async def close(self) -> None:
        await self.database.close()

    async def scalar(self, sql: str, **params: Any) -> Any:
        from sqlalchemy import text

        async with self.database.engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        async with self.database.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())

    async def execute(self, sql: str, **params: Any) -> int:
        from sqlalchemy import text

        async with self.database.engine.begin() as connection:
            return (await connection.execute(text(sql), params)).rowcount

    async def residents(self, telegram_ids: list[int], communities: list[str]) -> dict[int, int]:
        """Onboarded residents (consent given, community chosen, Chinese); returns telegram id → user id."""
        from shared.repo.users import get_or_create_user, give_consent

        users = {}
        async with self.database.sessions() as session:
            for index, telegram_id in enumerate(telegram_ids):
                user = await get_or_create_user(session, "telegram", str(telegram_id), display_name=f"居民{index}")
                give_consent(user)
                user.community_code = communities[index % len(communities)]
                user.locale = "zh"
                users[telegram_id] = user
            await session.commit()
            return {telegram_id: user.id for telegram_id, user in users.items()}


def broker_for(redis_url: str):  # type: ignore[no-untyped-def]
    """A producer-side Redis broker (same namespace and queues as the services)."""
    from dramatiq.brokers.redis import RedisBroker

    from shared.queue.broker import redis_client

    return RedisBroker(client=redis_client(redis_url))


@dataclass
class Scene:
    """What every fault scenario drives besides the services: the playground, the database, the broker."""

    playground: "PlaygroundClient"
    db: "Db"
    broker: Any
    exits: list[Callable[[], Any]] = field(default_factory=list)

    def at_exit(self, callback: Callable[[], Any]) -> None:
        """Run `callback` on the way out, before the logs are taken and the parts closed."""
        self.exits.append(callback)


@contextlib.asynccontextmanager
async def scene(stack: Stack, outcome: Any, **playground_options: Any) -> AsyncIterator[Scene]:
    """Start the playground and open the database and a producer broker; whatever happens in the
    scenario, its processes' logs end up in `outcome.logs` and all three are closed."""
    playground = await stack.start_playground(**playground_options)
    db = Db(stack.database_url)
    broker = broker_for(stack.redis_url)
    parts = Scene(playground, db, broker)
    try:
        yield parts
    finally:
        for callback in parts.exits:
            callback()
        outcome.logs = stack.logs()
        broker.close()
        await playground.close()
        await db.close()


# Texts that open a request (repair, sanitation, mediation) rather than a programme flow.
PROBLEMS = [
    "楼道的灯坏了好几天了 晚上黑乎乎的",
    "小区垃圾桶满了没人清理 味道很大",
    "家里停水了 一整天都没有水",
    "楼上漏水到我家天花板 邻居不理",
    "下水道堵了 污水冒出来了",
    "电梯坏了 老人上不了楼",
    "路灯不亮 晚上走路害怕",
    "楼下有人乱扔垃圾 还有老鼠",
    "暖气不热 屋里太冷了",
    "楼上装修噪音太大 每天很早就开始",
]


def problem(index: int) -> str:
    return f"{PROBLEMS[index % len(PROBLEMS)]}（{index // len(PROBLEMS) + 1}号楼{index % 7 + 1}单元）"


async def at_least(count: Callable[[], Awaitable[int]], target: int) -> int:
    """`count()` when it has reached `target`, else 0 (for `eventually`)."""
    value = await count()
    return value if value >= target else 0


async def none_left(db: Db, sql: str) -> bool:
    return await db.scalar(sql) == 0


def unacked(redis_url: str, queue: str) -> int:
    """Messages of `queue` fetched but not acknowledged by any worker (dead ones included)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k for k in client.scan_iter(match=b"dramatiq:__acks__.*") if k.decode().endswith("." + queue)]
        return sum(client.scard(k) for k in keys)
    finally:
        client.close()


class FlakyTelegram:
    """An HTTP proxy in front of the playground: answers the first `failures` sends with 502, and
    records every send it passes on (arrival, chat, text, status, retry_after, answer time).

    Runs in its own thread (like `TcpProxy`); everything else is passed through unchanged.
    """

    SENDS = ("/sendMessage", "/sendPhoto", "/sendLocation")
    FIELD = r'name="{}"\r\n(?:[^\r\n]+\r\n)*\r\n(.*?)\r\n--'

    def __init__(self, upstream: str, failures: int):
        self.upstream, self.failures, self.failed = upstream, failures, 0
        self.sends: list[tuple[float, str, str, int, float, float]] = []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="flaky-telegram", daemon=True)
        self.thread.start()
        self.runner = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)

    def _field(self, body: bytes, name: str) -> str:
        import json
        from urllib.parse import parse_qs

        text = body.decode("utf-8", "replace")
        found = re.search(self.FIELD.format(name), text, re.S)
        if found:
            return found.group(1)
        with contextlib.suppress(ValueError):
            return str(json.loads(text).get(name, ""))
        return parse_qs(text).get(name, [""])[0]

    async def _start(self):  # type: ignore[no-untyped-def]
        import json

        from aiohttp import web

        self.http = aiohttp.ClientSession()

        async def handle(request: web.Request) -> web.StreamResponse:
            arrived = time.monotonic()
            body = await request.read()
            is_send = request.path.endswith(self.SENDS)
            if is_send and self.failed < self.failures:
                self.failed += 1
                self.sends.append((arrived, self._field(body, "chat_id"), self._field(body, "text"), 502, 0.0,
                                   time.monotonic()))
                return web.json_response({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502)
            headers = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
            async with self.http.request(request.method, self.upstream + request.path_qs, data=body,
                                         headers=headers) as answer:
                payload = await answer.read()
                status, content_type = answer.status, answer.content_type
            if is_send:
                retry_after = 0.0
                with contextlib.suppress(ValueError, AttributeError):
                    retry_after = float(json.loads(payload).get("parameters", {}).get("retry_after", 0))
                self.sends.append((arrived, self._field(body, "chat_id"), self._field(body, "text"), status,
                                   retry_after, time.monotonic()))
            return web.Response(body=payload, status=status, content_type=content_type)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.http.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


async def copies_of_rows(db: Db, playground: PlaygroundClient, where: str) -> dict[tuple[str, str], tuple[int, int]]:
    """For the outbox rows matching `where`: (chat, text) -> (rows queued, messages the playground received).

    Compared by chat and exact text, so whatever else the scheduler sends meanwhile (fridge shifts,
    summaries…) does not count; a notification sent twice shows as received > queued.
    """
    queued: Counter[tuple[str, str]] = Counter()
    for chat, text in await db.rows(f"SELECT chat_id, text FROM outbox WHERE edit_message_id IS NULL AND ({where})"):
        queued[(str(chat), text)] += 1
    received: Counter[tuple[str, str]] = Counter()
    for chat in {chat for chat, _ in queued}:
        for text in await playground.bot_texts(chat):
            if (chat, text) in queued:
                received[(chat, text)] += 1
    return {key: (count, received[key]) for key, count in queued.items()}


def mismatches(copies: dict[tuple[str, str], tuple[int, int]]) -> dict[tuple[str, str], tuple[int, int]]:
    return {key: value for key, value in copies.items() if value[0] != value[1]}
