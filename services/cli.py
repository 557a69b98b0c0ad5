"""`linju`: one command, one subcommand per service and operator task."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from shared.logs import setup_logging
from shared.runtime import use_uvloop
from shared.settings import Settings, get_settings

log = logging.getLogger("linju")


def _until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` and set `stop` on SIGTERM/SIGINT for a clean shutdown."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> None:
    from shared.db.migrate import upgrade

    upgrade(settings.database_url)
    log.info("database migrated")


def cmd_demo(settings: Settings, _args: argparse.Namespace) -> None:
    from shared.demo import load_demo
    from shared.runtime import Database, load_config

    async def main() -> None:
        database = Database.connect(settings)
        async with database.sessions() as session:
            people = await load_demo(session, load_config(settings))
        await database.close()
        log.info("demo data loaded", extra={"people": len(people)})

    asyncio.run(main())


def _with_health(settings: Settings, main: Callable[[asyncio.Event], Awaitable[None]]) -> Callable[[asyncio.Event], Awaitable[None]]:
    """Serve /healthz and /readyz on HEALTH_PORT (when set) while `main` runs."""
    from shared import health

    async def wrapped(stop: asyncio.Event) -> None:
        started = await health.start(settings)
        try:
            await main(stop)
        finally:
            await health.stop(started)

    return wrapped


def cmd_bot(settings: Settings, _args: argparse.Namespace) -> None:
    from services.bot.main import run_bot

    _until_signal(_with_health(settings, lambda stop: run_bot(settings, stop)))


def cmd_matrix(settings: Settings, _args: argparse.Namespace) -> None:
    from services.matrix.main import run_matrix

    _until_signal(lambda stop: run_matrix(settings, stop))


def _run_worker(settings: Settings, register: Callable, queues: set[str], threads: int) -> None:  # type: ignore[type-arg]
    import dramatiq

    from shared import health
    from shared.queue.broker import close_on_shutdown, create_broker, create_worker

    health.start_in_thread(settings)
    broker = create_broker(settings)
    dramatiq.set_broker(broker)
    close_on_shutdown(broker, *register(broker, settings))  # what the actors opened
    worker = create_worker(broker, settings, threads=threads, queues=queues)
    worker.start()
    log.info("worker started", extra={"queues": sorted(queues), "threads": threads})

    def stop_worker(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_worker)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        log.info("worker stopping")
        worker.stop(timeout=settings.worker_stop_timeout_ms)
        broker.close()


def cmd_deliver(settings: Settings, args: argparse.Namespace) -> None:
    from services.bot import delivery
    from shared.queue.contracts import DELIVER_NOTIFICATION

    def register(broker, settings):  # type: ignore[no-untyped-def]
        senders = {}
        if settings.matrix_enabled:
            from services.matrix.sender import senders_for

            senders = senders_for(settings, broker)
        return [delivery.register(broker, settings, senders=senders)]

    _run_worker(settings, register, {DELIVER_NOTIFICATION.queue_name}, args.threads)


def cmd_intake(settings: Settings, args: argparse.Namespace) -> None:
    if args.intake_command == "train":
        from services.intake.classifier import train

        print(json.dumps(train(), ensure_ascii=False, indent=2))
        return
    if args.intake_command == "evaluate":
        from services.intake.classifier import evaluate, format_report

        report = evaluate(Path(args.path))
        print(json.dumps(report, ensure_ascii=False) if args.json else format_report(report))
        return
    if args.intake_command == "export-feedback":
        from services.intake.feedback import export_feedback

        count = asyncio.run(export_feedback(settings, sys.stdout))
        log.info("feedback exported", extra={"count": count})
        return
    from services.intake import worker
    from services.scheduler import worker as jobs_worker
    from shared.queue.contracts import CLASSIFY_REQUEST, RUN_JOB

    def register(broker, settings: Settings) -> list:  # type: ignore[no-untyped-def]
        # The scheduler's jobs run here too (docs/architecture.md).
        return [worker.register(broker, settings), jobs_worker.register(broker, settings)]

    _run_worker(settings, register, {CLASSIFY_REQUEST.queue_name, RUN_JOB.queue_name}, args.threads)


def cmd_scheduler(settings: Settings, _args: argparse.Namespace) -> None:
    from services.scheduler.main import run_scheduler

    _until_signal(_with_health(settings, lambda stop: run_scheduler(settings, stop)))


def cmd_dashboard(settings: Settings, _args: argparse.Namespace) -> None:
    from services.dashboard.app import run_dashboard

    _until_signal(lambda stop: run_dashboard(settings, stop))


def cmd_export(settings: Settings, args: argparse.Namespace) -> None:
    """Monthly CSV to stdout: `linju export requests --month 2026-11 [--community zjy]`."""
    from shared import reports
    from shared.runtime import Database, load_config

    parsed = reports.parse_month(args.month)
    if parsed is None:
        raise SystemExit("--month must look like 2026-11")
    config = load_config(settings)
    if args.community and not config.has_community(args.community):
        raise SystemExit(f"unknown community {args.community!r}; known: {', '.join(config.codes)}")
    writer = reports.write_requests_csv if args.kind == "requests" else reports.write_hours_csv

    async def main() -> int:
        database = Database.connect(settings, pool_size=1)
        try:
            async with database.sessions() as session:
                return await writer(session, sys.stdout, year=parsed[0], month=parsed[1],
                                    tz=config.defaults.timezone,
                                    communities=frozenset({args.community}) if args.community else None)
        finally:
            await database.close()

    log.info("export written", extra={"kind": args.kind, "rows": asyncio.run(main())})


def cmd_run(settings: Settings, _args: argparse.Namespace) -> None:
    from services.run_all import run_all

    _until_signal(lambda stop: run_all(settings, stop))


def cmd_check(settings: Settings, _args: argparse.Namespace) -> None:
    """Health check for containers: the database and the broker answer."""
    from sqlalchemy import text

    from shared.queue.broker import redis_answers
    from shared.runtime import Database

    async def main() -> bool:
        database = Database.connect(settings, pool_size=1)
        try:
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await database.close()
        return settings.broker != "redis" or redis_answers(settings.redis_url)

    sys.exit(0 if asyncio.run(main()) else 1)


def cmd_users(settings: Settings, args: argparse.Namespace) -> None:
    from shared.repo.users import get_or_create_user, grant_role, revoke_role
    from shared.runtime import Database, load_config

    async def main() -> None:
        config = load_config(settings)
        if args.community and not config.has_community(args.community):
            raise SystemExit(f"unknown community {args.community!r}; known: {', '.join(config.codes)}")
        database = Database.connect(settings)
        who = f"{args.platform}:{args.platform_id}"
        try:
            async with database.sessions() as session:
                user = await get_or_create_user(session, args.platform, str(args.platform_id))
                if args.users_command == "demote":
                    message = f"{who} is no longer {args.role}" if revoke_role(user, args.role) else f"{who} was not {args.role}"
                else:
                    if args.role == "staff" and not (args.community or user.community_code):
                        # Staff act for one community; without one, their first community button would choose it.
                        raise SystemExit(f"staff act for one community: add --community ({', '.join(config.codes)})")
                    grant_role(user, args.role)
                    if args.community:
                        user.community_code = args.community
                    message = f"{who} is now {args.role}" + (f" in {args.community}" if args.community else "")
                await session.commit()
        finally:
            await database.close()
        print(message)

    asyncio.run(main())


def cmd_deadletters(settings: Settings, args: argparse.Namespace) -> None:
    """List or replay messages whose retries ran out (Redis broker)."""
    import dramatiq

    from shared.queue import deadletters
    from shared.queue.broker import create_broker, redis_client

    if not settings.redis_url:
        raise SystemExit("dead letters live in Redis; REDIS_URL is not set")
    client = redis_client(settings.redis_url)
    if args.deadletters_command == "list":
        for letter in deadletters.list_dead(client):
            print(json.dumps({"queue": letter.queue, "message_id": letter.message_id, "actor": letter.actor,
                              "kwargs": letter.kwargs}, ensure_ascii=False))
        return
    broker = create_broker(settings)
    dramatiq.set_broker(broker)
    print(f"replayed {deadletters.replay(client, broker)} messages")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linju", description="Linju (邻聚) services and operator tools")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    db = sub.add_parser("db", help="database: `linju db upgrade` (the same as `linju migrate`)")
    db.add_argument("db_command", choices=["upgrade"])
    db.set_defaults(func=cmd_migrate)
    demo = sub.add_parser("demo", help="load demo data (idempotent): `linju demo [load]`")
    demo.add_argument("demo_command", nargs="?", choices=["load"], default="load")
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("bot", help="run the Telegram bot (polling or webhook)").set_defaults(func=cmd_bot)
    sub.add_parser("matrix", help="run the Matrix bot (docs/matrix.md)").set_defaults(func=cmd_matrix)
    deliver = sub.add_parser("deliver", help="run the notification delivery worker")
    deliver.add_argument("--threads", type=int, default=8)
    deliver.set_defaults(func=cmd_deliver)
    intake = sub.add_parser("intake", help="run the intake worker (and the scheduler's jobs), or train/evaluate the classifier")
    intake.add_argument("--threads", type=int, default=4)
    intake.set_defaults(func=cmd_intake, intake_command=None)
    intake_sub = intake.add_subparsers(dest="intake_command")
    intake_sub.add_parser("train", help="rebuild the model from services/intake/data")
    evaluate = intake_sub.add_parser("evaluate", help="evaluate on a JSONL file of {text,label,urgent}")
    evaluate.add_argument("path")
    evaluate.add_argument("--json", action="store_true")
    intake_sub.add_parser("export-feedback", help="print residents' category choices as JSONL")
    sub.add_parser("scheduler", help="run the scheduler").set_defaults(func=cmd_scheduler)
    sub.add_parser("dashboard", help="run the staff web dashboard (metrics, exports)").set_defaults(func=cmd_dashboard)
    export = sub.add_parser("export", help="monthly CSV of requests or volunteer hours to stdout")
    export.add_argument("kind", choices=["requests", "hours"])
    export.add_argument("--month", required=True, help="e.g. 2026-11")
    export.add_argument("--community")
    export.set_defaults(func=cmd_export)
    sub.add_parser("run", help="run everything in one process (make run)").set_defaults(func=cmd_run)
    sub.add_parser("check", help="exit 0 when the database and broker answer").set_defaults(func=cmd_check)
    dead = sub.add_parser("deadletters", aliases=["dead-letters"], help="list or replay dead-lettered queue messages")
    dead.add_argument("deadletters_command", choices=["list", "replay"])
    dead.set_defaults(func=cmd_deadletters)
    users = sub.add_parser("users", help="manage users")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    promote = users_sub.add_parser("promote", help="give a user a role")
    promote.add_argument("platform_id")
    promote.add_argument("--role", required=True, choices=["volunteer", "staff", "admin"])
    promote.add_argument("--community")
    promote.add_argument("--platform", default="telegram")
    promote.set_defaults(func=cmd_users)
    demote = users_sub.add_parser("demote", help="take a role away")
    demote.add_argument("platform_id")
    demote.add_argument("--role", required=True, choices=["volunteer", "staff", "admin"])
    demote.add_argument("--platform", default="telegram")
    demote.set_defaults(func=cmd_users, community=None)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format, service=args.command)
    use_uvloop()
    args.func(settings, args)


if __name__ == "__main__":
    main()
