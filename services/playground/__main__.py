"""python -m services.playground --port 8081 [--rate-limits] [--scale 1.0]: the playground alone."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.playground",
                                     description="Local Telegram-Bot-API-compatible server with a web chat page.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--rate-limits", action="store_true", help="answer Telegram-like flood limits with 429")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every rate limit (e.g. 10 for fast tests)")
    parser.add_argument("--bot-id", type=int, default=7000000001)
    parser.add_argument("--bot-username", default="linju_bot")
    parser.add_argument("--token", default=None, help="accept only this token (default: any well-formed token)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def serve() -> None:
        from services.playground.server import start_playground

        runner = await start_playground(args.host, args.port, rate_limits=args.rate_limits, scale=args.scale,
                                        bot_id=args.bot_id, bot_username=args.bot_username, token=args.token)
        print(f"Playground: http://{args.host}:{args.port}/  "
              f"(bot API base for aiogram: TelegramAPIServer.from_base('http://{args.host}:{args.port}'))",
              flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
