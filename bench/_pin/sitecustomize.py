"""Benchmark what-if (`bench/intake_e2e.py --pin-responses`): not used by Linju itself.

aiogram parses every Bot API answer with `Response[<result type>]`, a pydantic generic
class that pydantic caches only weakly; after each garbage collection the next call
rebuilds it (milliseconds of CPU). services/bot/delivery.py holds the classes it uses;
this file does the same for every process the benchmark starts, to measure what the
same one-line fix would give the bot process (services/bot/app.py).
"""

try:
    from aiogram.methods import AnswerCallbackQuery, EditMessageText, GetUpdates, Response, SendMessage

    _PINNED = [Response[m.__returning__] for m in (SendMessage, GetUpdates, AnswerCallbackQuery, EditMessageText)]
except Exception:  # noqa: BLE001, S110 - a what-if must never stop a service from starting
    pass
