"""Property-based test of the Open311 API against its own OpenAPI document (schemathesis).

Hypothesis generates requests from the document; every answer must be a documented
status with a body matching the documented schema, and never a server error.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from aiohttp import web
from dramatiq.brokers.stub import StubBroker
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from services.dashboard.app import build, create_app
from services.dashboard.open311 import OPENAPI
from shared.repo.communities import sync_communities
from shared.runtime import Database, load_config
from shared.settings import Settings

KEY = "schemathesis-key"
schema = schemathesis.openapi.from_dict(json.loads(OPENAPI.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def base_url(sqlite_url: str) -> Iterator[str]:
    """The dashboard on a real port, in its own thread and loop, on the session's SQLite database."""
    loop = asyncio.new_event_loop()
    started: dict = {}
    ready = threading.Event()

    async def start() -> None:
        config_settings = Settings(database_url=sqlite_url, broker="stub", redis_url=None, _env_file=None,
                                   open311_api_keys=[KEY], dashboard_secret=SecretStr("x"))
        database = Database.connect(config_settings)
        async with database.sessions() as session:
            await sync_communities(session, load_config(config_settings))
            await session.commit()
        runner = web.AppRunner(create_app(build(config_settings, database, StubBroker())))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        started.update(runner=runner, database=database, port=runner.addresses[0][1])
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(30), "the dashboard did not start"
    yield f"http://127.0.0.1:{started['port']}/open311/v2"

    async def stop() -> None:
        await started["runner"].cleanup()
        await started["database"].close()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_open311_conforms_to_its_openapi_document(case, base_url):  # type: ignore[no-untyped-def]
    if case.method == "POST" and isinstance(case.body, dict) and len(str(case.body.get("api_key", ""))) % 2 == 0:
        case.body["api_key"] = KEY  # half the submissions carry a valid key, so writes are exercised too
    case.call_and_validate(base_url=base_url, checks=[not_a_server_error, status_code_conformance,
                                                      content_type_conformance, response_schema_conformance])
