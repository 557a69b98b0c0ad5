"""Optional push mode: after setWebhook, updates are POSTed to the bot's URL one at a time.

Like Telegram: the secret token goes in X-Telegram-Bot-Api-Secret-Token, an update is
dropped once the bot answers 2xx, failures are retried with back-off and reported in
getWebhookInfo, and a reply body carrying {"method": ...} is executed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp

from services.playground.botapi import BotApi
from services.playground.errors import ApiError
from services.playground.state import update_allowed

log = logging.getLogger("linju.playground.webhook")


async def push_updates(api: BotApi) -> None:
    state = api.state
    backoff = 0.5
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while not api.closing:
            hook = state.webhook
            pending = [u for u in state.updates if update_allowed(u, hook["allowed_updates"])] if hook else []
            if hook is None or not pending:
                await state.updates_changed.wait(5)
                continue
            update = pending[0]
            headers = {"X-Telegram-Bot-Api-Secret-Token": hook["secret_token"]} if hook["secret_token"] else {}
            try:
                async with session.post(hook["url"], json=update, headers=headers) as response:
                    body = await response.read()
                    ok = 200 <= response.status < 300
                    error = f"Wrong response from the webhook: {response.status} {response.reason}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                ok, body, error = False, b"", f"Connection failed: {type(exc).__name__}"
            if not ok:
                hook.update(last_error_date=int(time.time()), last_error_message=error)
                log.info("webhook delivery_failed update_id=%s error=%s", update["update_id"], error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            backoff = 0.5
            if update in state.updates:
                state.updates.remove(update)
            await _run_reply(api, body)


async def _run_reply(api: BotApi, body: bytes) -> None:
    try:
        reply = json.loads(body) if body.strip() else None
    except ValueError:
        return
    if isinstance(reply, dict) and isinstance(reply.get("method"), str):
        values = {key: value for key, value in reply.items() if key != "method"}
        try:
            await api.call(reply["method"], values)
        except ApiError as exc:
            log.info("webhook reply_method_failed method=%s status=%s", reply["method"], exc.code)
