"""`linju run` (what `make run` starts): every service in one process.

SQLite file database, Redis if one answers (else the in-process broker, said in
the log), demo data, and — without a Telegram token — the local playground the
bot talks to instead of Telegram.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import dramatiq

from services.bot import delivery
from services.bot.main import run_bot
from services.dashboard.app import start_dashboard
from services.intake import worker as intake_worker
from services.scheduler import worker as jobs_worker
from services.scheduler.main import run_scheduler
from shared.db.migrate import upgrade
from shared.demo import DemoPerson, load_demo
from shared.queue.broker import close_on_shutdown, create_broker, create_worker, describe
from shared.runtime import Database, load_config
from shared.settings import Settings

log = logging.getLogger("linju.run")


async def _seed_playground(base: str, settings: Settings, people: list[DemoPerson]) -> None:
    config = load_config(settings)
    async with aiohttp.ClientSession() as http:
        for person in people:
            await http.post(f"{base}/playground/api/users",
                            json={"id": person.telegram_id, "first_name": person.name, "language_code": "zh",
                                  "role": person.role})
        for community in config.communities:
            name = community.name["zh"]
            groups = [(community.staff_chat_id, f"{name} · 工作人员群", "staff"),
                      (community.volunteer_chat_id, f"{name} · 志愿者群", "volunteer")]
            for chat_id, title, role in groups:
                if chat_id is None:
                    continue
                await http.post(f"{base}/playground/api/chats", json={"id": chat_id, "title": title, "type": "supergroup"})
                for person in people:
                    if person.community == community.code and (person.role == role or person.role == "staff"):
                        await http.post(f"{base}/playground/api/chats/{chat_id}/members", json={"user_id": person.telegram_id})


async def run_all(settings: Settings, stop: asyncio.Event) -> None:
    await asyncio.to_thread(upgrade, settings.database_url)
    config = load_config(settings)
    database = Database.connect(settings)
    async with database.sessions() as session:
        people = await load_demo(session, config)
    await database.close()

    playground = None
    if settings.telegram_bot_token is None:
        from services.playground.server import start_playground

        playground = await start_playground(settings.playground_host, settings.playground_port,
                                            rate_limits=settings.playground_rate_limits)
        base = f"http://{settings.playground_host}:{settings.playground_port}"
        settings = settings.model_copy(update={"telegram_api_base": base})
        await _seed_playground(base, settings, people)

    broker = create_broker(settings, allow_in_process=True)
    dramatiq.set_broker(broker)
    intake = intake_worker.register(broker, settings, config=config)
    jobs = jobs_worker.register(broker, settings, config=config)  # the scheduler enqueues, this worker runs the jobs
    senders = {}
    if settings.matrix_enabled:  # optional: only when the Matrix settings are present
        from services.matrix.sender import senders_for

        senders = senders_for(settings, broker)
    close_on_shutdown(broker, intake, jobs, delivery.register(broker, settings, senders=senders))
    worker = create_worker(broker, settings, threads=4)
    await asyncio.to_thread(worker.start)
    dashboard, dashboard_db = await start_dashboard(settings, broker)
    log.info("all services started", extra={"broker": describe(broker), "database": settings.database_url.split(":")[0]})
    if playground is not None:
        print(f"\n  Linju is running. Open http://{settings.playground_host}:{settings.playground_port}/ "
              "to chat with the bot as a resident, a volunteer or a staff member.\n"
              f"  Staff dashboard: http://{settings.dashboard_host}:{settings.dashboard_port}/\n  Press Ctrl+C to stop.\n",
              flush=True)
    try:
        services = [run_bot(settings, stop, broker=broker), run_scheduler(settings, stop, broker=broker)]
        if settings.matrix_enabled:
            from services.matrix.main import run_matrix

            services.append(run_matrix(settings, stop, broker=broker))
        await asyncio.gather(*services)
    finally:
        await asyncio.to_thread(worker.stop, 10_000)
        await dashboard.cleanup()
        await dashboard_db.close()
        if playground is not None:
            await playground.cleanup()
