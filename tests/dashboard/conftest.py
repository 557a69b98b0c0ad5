"""A running dashboard (aiohttp test server) on the real SQLite/PostgreSQL database, and people in it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr
from sqlalchemy import func, select

from services.dashboard.app import build, create_app
from shared.db.models import OutboxMessage, Request, RequestEvent, User
from shared.domain.requests import RequestStatus
from shared.intake.outcome import route
from shared.repo.requests import create_request
from shared.repo.users import get_or_create_user, grant_role
from shared.runtime import Database

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NONCE = re.compile(r'action="/requests/\d+/(\w+)"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"><input type="hidden" name="nonce" value="([^"]+)"')
CHALLENGE = re.compile(r'name="challenge" value="([^"]*)"')
CODE = re.compile(r"(\d{6})")

STAFF_ZJY, STAFF_CJX, ADMIN, RESIDENT, VOLUNTEER = "9001", "9002", "9003", "9004", "9005"


@dataclass
class People:
    staff_zjy: User
    staff_cjx: User
    admin: User
    resident: User
    volunteer: User


async def add_person(db: Database, external_id: str, name: str, role: str | None, community: str | None) -> User:
    async with db.sessions() as session:
        user = await get_or_create_user(session, "telegram", external_id)
        user.display_name = name
        user.community_code = community
        user.locale = "zh"
        if role:
            grant_role(user, role)
        await session.commit()
        return user


async def add_request(db: Database, config, resident: User, community: str, text: str, *,  # type: ignore[no-untyped-def]
                      label: str = "repair", urgent: bool = False, key: str | None = None) -> Request:
    async with db.sessions() as session:
        request, _ = await create_request(session, community_code=community, user_id=resident.id, text=text,
                                          idempotency_key=key or f"test:{community}:{text}")
        await route(session, config, request, label, urgent=urgent, confidence=0.95, actor="test",
                    only_from={RequestStatus.RECEIVED})
        await session.commit()
        return await session.get(Request, request.id)


@pytest.fixture
async def people(db: Database) -> People:
    return People(
        staff_zjy=await add_person(db, STAFF_ZJY, "王社工", "staff", "zjy"),
        staff_cjx=await add_person(db, STAFF_CJX, "李社工", "staff", "cjx"),
        admin=await add_person(db, ADMIN, "管理员", "admin", None),
        resident=await add_person(db, RESIDENT, "张阿姨", None, "zjy"),
        volunteer=await add_person(db, VOLUNTEER, "志愿者小赵", "volunteer", "zjy"),
    )


class Browser:
    """A test client that signs in the way a person does: ask, read the bot's message, type the code."""

    def __init__(self, client: TestClient, db: Database) -> None:
        self.client, self.db = client, db

    async def login_csrf(self) -> str:
        page = await self.client.get("/login")
        assert page.status == 200
        return CSRF.search(await page.text()).group(1)

    async def ask_code(self, account: str) -> tuple[int, str]:
        response = await self.client.post("/login", data={"csrf": await self.login_csrf(), "account": account})
        body = await response.text()
        match = CHALLENGE.search(body)
        return response.status, match.group(1) if match else ""

    async def code_sent_to(self, account: str) -> list[str]:
        async with self.db.sessions() as session:
            rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == account,
                                                                     OutboxMessage.key.like("dashboard_code:%"))
                                         .order_by(OutboxMessage.id))
            return [CODE.search(row.text).group(1) for row in rows]

    async def verify(self, challenge: str, code: str):  # type: ignore[no-untyped-def]
        return await self.client.post("/login/verify", allow_redirects=False,
                                      data={"csrf": await self.login_csrf(), "challenge": challenge, "code": code})

    async def sign_in(self, account: str) -> None:
        status, challenge = await self.ask_code(account)
        assert status == 200
        code = (await self.code_sent_to(account))[-1]
        response = await self.verify(challenge, code)
        assert response.status == 303, await response.text()

    async def forms(self, request_id: int) -> dict[str, tuple[str, str]]:
        """action → (csrf, nonce) as rendered on the request's page."""
        page = await self.client.get(f"/requests/{request_id}")
        assert page.status == 200
        return {action: (csrf, nonce) for action, csrf, nonce in NONCE.findall(await page.text())}

    async def act(self, request_id: int, action: str, value: str = "", *, csrf: str | None = None,
                  nonce: str | None = None):  # type: ignore[no-untyped-def]
        forms = await self.forms(request_id)
        form_csrf, form_nonce = forms[action]
        data = {"csrf": form_csrf if csrf is None else csrf, "nonce": form_nonce if nonce is None else nonce,
                "value": value}
        return await self.client.post(f"/requests/{request_id}/{action}", data=data, allow_redirects=False)


@pytest.fixture
async def dashboard_app(db: Database, settings):  # type: ignore[no-untyped-def]
    settings = settings.model_copy(update={"dashboard_secret": SecretStr("test-secret-for-the-dashboard")})
    return build(settings, db, StubBroker())


@pytest.fixture
async def browser(dashboard_app, db: Database) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    async with TestClient(TestServer(create_app(dashboard_app))) as client:
        yield Browser(client, db)


@pytest.fixture
async def other_browser(dashboard_app, db: Database) -> AsyncIterator[Browser]:  # type: ignore[no-untyped-def]
    async with TestClient(TestServer(create_app(dashboard_app))) as client:
        yield Browser(client, db)


async def events_of(db, request_id: int, kind: str) -> int:  # type: ignore[no-untyped-def]
    """How many timeline events of `kind` the request has."""
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(RequestEvent)
                                        .where(RequestEvent.request_id == request_id, RequestEvent.kind == kind)))


async def stored_request(db, request_id: int) -> Request:  # type: ignore[no-untyped-def]
    async with db.sessions() as session:
        return await session.get(Request, request_id)
