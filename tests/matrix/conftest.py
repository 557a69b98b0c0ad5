"""Fixtures for the Matrix channel against a real Synapse started by the tests (see homeserver.py).

Under CI=true a Synapse that cannot be installed or started FAILS these tests; elsewhere they skip.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO
from nio import AsyncClient, AsyncClientConfig, InviteMemberEvent, RoomMessage, RoomPreset, SyncResponse

from services.bot import delivery
from services.intake import worker as intake_worker
from services.matrix.main import MatrixBot, create_matrix_bot
from services.matrix.sender import MatrixSender
from shared.runtime import Database
from shared.settings import Settings
from tests.conftest import need
from tests.matrix.homeserver import Homeserver, start
from tests.pipeline_drain import drain

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def homeserver(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    try:
        server = start(tmp_path_factory.mktemp("synapse"))
    except Exception as exc:  # noqa: BLE001 - reported as a skip, or a failure under CI
        need(f"Synapse ({type(exc).__name__}: {str(exc)[:300]})", False)
    yield server
    server.stop()


@dataclass
class Seen:
    room_id: str
    event_id: str
    sender: str
    content: dict[str, Any]

    @property
    def body(self) -> str:
        return str(self.content.get("body", ""))

    @property
    def replaces(self) -> str | None:
        relation = self.content.get("m.relates_to") or {}
        return relation.get("event_id") if relation.get("rel_type") == "m.replace" else None


@dataclass
class Person:
    """A Matrix user with a real client (matrix-nio, like the bot): joins invites, records what arrives."""

    client: AsyncClient
    user_id: str
    since: str | None = None
    seen: list[Seen] = field(default_factory=list)

    @classmethod
    async def login(cls, homeserver: Homeserver, user_id: str) -> "Person":
        client = AsyncClient(homeserver.url, user_id, config=AsyncClientConfig(encryption_enabled=False))
        response = await client.login(PASSWORD)
        assert getattr(response, "access_token", None), response
        person = cls(client, user_id)
        await person.sync(0)
        return person

    async def sync(self, timeout_ms: int = 500) -> None:
        response = await self.client.sync(timeout=timeout_ms, since=self.since)
        assert isinstance(response, SyncResponse), response
        self.since = response.next_batch
        for room_id, invite in response.rooms.invite.items():
            if any(isinstance(e, InviteMemberEvent) and e.state_key == self.user_id for e in invite.invite_state):
                await self.client.join(room_id)
        for room_id, room in response.rooms.join.items():
            for event in room.timeline.events:
                if isinstance(event, RoomMessage) and event.sender != self.user_id:
                    self.seen.append(Seen(room_id, event.event_id, event.sender, dict(event.source["content"])))

    async def wait_for(self, predicate: Callable[[list[Seen]], Any], timeout: float = 30.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = predicate(self.seen)
            if found:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.user_id} waited in vain; saw: {[s.body[:60] for s in self.seen[-5:]]}")
            await self.sync(500)

    async def next_from(self, room_id: str, sender: str, count: int = 1, timeout: float = 30.0) -> list[Seen]:
        """Wait for `count` new messages from `sender` in `room_id` (counted from now)."""
        start = len([s for s in self.seen if s.room_id == room_id and s.sender == sender])

        def ready(seen: list[Seen]) -> list[Seen] | None:
            mine = [s for s in seen if s.room_id == room_id and s.sender == sender]
            return mine[start:start + count] if len(mine) >= start + count else None

        return await self.wait_for(ready, timeout)

    async def say(self, room_id: str, text: str, *, reply_to: str | None = None) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": text}
        if reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
            content["body"] = f"> <@bot> …\n\n{text}"
        response = await self.client.room_send(room_id, "m.room.message", content)
        return response.event_id

    async def direct_room_with(self, bot_id: str) -> str:
        response = await self.client.room_create(is_direct=True, invite=[bot_id],
                                                 preset=RoomPreset.trusted_private_chat)
        return response.room_id


@dataclass
class MatrixWorld:
    homeserver: Homeserver
    settings: Settings
    bot: MatrixBot
    bot_id: str
    broker: dramatiq.Broker
    worker: dramatiq.Worker
    db: Database
    config: Any
    staff_room: str
    volunteer_room: str
    people: dict[str, Person]

    async def drain(self, timeout: float = 30.0) -> None:
        await drain(self.broker, self.worker, self.db, timeout=timeout, poll=0.05)

    async def wait_joined(self, room_id: str, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while room_id not in self.bot.api.client.rooms or self.bot.api.client.rooms[room_id].member_count < 2:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the bot did not join")
            await asyncio.sleep(0.1)


@pytest.fixture
async def world(homeserver: Homeserver, db: Database, database_url: str, redis_url: str,
                config) -> AsyncIterator[MatrixWorld]:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    ids = {name: await asyncio.to_thread(homeserver.register, f"{name}{tag}", PASSWORD)
           for name in ("bot", "resident", "volunteer", "staff", "outsider")}
    people = {name: await Person.login(homeserver, ids[name]) for name in ("resident", "volunteer", "staff", "outsider")}
    staff = people["staff"]
    room = (await staff.client.room_create(name="张家园 · 工作人员", invite=[ids["bot"], ids["outsider"]])).room_id
    volunteers = (await staff.client.room_create(name="张家园 · 志愿者", invite=[ids["bot"], ids["volunteer"]])).room_id
    await people["outsider"].sync(0)
    await people["volunteer"].sync(0)
    # A centre on its own homeserver: Matrix rooms, no Telegram groups (nothing here delivers to Telegram).
    communities = [c.model_copy(update={"matrix_staff_room": room, "matrix_volunteer_room": volunteers,
                                        "staff_chat_id": None, "volunteer_chat_id": None})
                   if c.code == "zjy" else c for c in config.communities]
    world_config = config.model_copy(update={"communities": communities})

    settings = Settings(database_url=database_url, redis_url=redis_url, broker="stub", _env_file=None,
                        matrix_homeserver=homeserver.url, matrix_user_id=ids["bot"], matrix_password=PASSWORD,
                        matrix_messages_per_second=200, matrix_burst=50, matrix_room_per_second=50,
                        matrix_group_per_minute=600)
    broker = StubBroker()
    broker.emit_after("process_boot")
    broker.add_middleware(AsyncIO())
    intake_worker.register(broker, settings, config=world_config)
    deliverer = delivery.register(broker, settings, senders={"matrix": MatrixSender(settings, broker)})
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    bot = create_matrix_bot(settings, db, broker, world_config)
    stop = asyncio.Event()
    task = asyncio.create_task(bot.run(stop))
    world = MatrixWorld(homeserver, settings, bot, ids["bot"], broker, worker, db, world_config, room, volunteers,
                        people)
    await world.wait_joined(room)
    await world.wait_joined(volunteers)
    yield world
    stop.set()
    await asyncio.wait_for(task, 40)
    await bot.api.close()
    await bot.store.close()
    worker.stop()
    broker.flush_all()
    broker.close()
    del deliverer
    for person in people.values():
        await person.client.close()
