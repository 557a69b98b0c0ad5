"""Local playground: a Telegram-Bot-API-compatible server plus a web chat page.

The real bot runs unchanged against it (aiogram's ``TelegramAPIServer.from_base``),
so Linju can be tried — and tested over real HTTP — without a Telegram token.
See ``server.create_app`` / ``server.start_playground``.
"""
