"""A resident's photo, fetched from Telegram for staff who may see its request.

`GET /requests/{id}/attachments/{index}` checks the viewer exactly as the request's page does
(`visible_request`: signed-in staff of the request's community, or an admin), asks the Bot API
the bot uses for the file's path (`getFile`, `shared.telegram_bot`) and streams the bytes back.
The bot token is only in the URL this process fetches: never in a page, a redirect or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramNotFound
from aiohttp import web

from services.dashboard.attachments import describe
from services.dashboard.auth import apply_security_headers
from services.dashboard.context import dashboard, viewer
from services.dashboard.render import page
from services.dashboard.requests_views import visible_request
from shared.db.models import Request
from shared.settings import Settings
from shared.telegram_bot import create_bot

log = logging.getLogger("linju.dashboard")

MAX_BYTES = 20 * 1024 * 1024  # the Bot API hands out files up to 20 MB
CHUNK = 64 * 1024
GET_FILE_SECONDS = 10
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=20)
# The browser may keep a photo a few minutes, for this signed-in person only (never a shared cache):
# after /forgetme the request no longer lists it and the proxy answers 404.
CACHE_CONTROL = "private, max-age=300"
MAX_INDEX_DIGITS = 4


class TelegramFiles:
    """Residents' photos by file_id, from the Bot API server the bot uses (one `Bot` per dashboard app)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._bot: Bot | None = None

    @property
    def bot(self) -> Bot:
        if self._bot is None:
            self._bot = create_bot(self._settings)
        return self._bot

    async def path_of(self, file_id: str) -> str | None:
        """The file's path on the Bot API server (`getFile`); None when Telegram gives none."""
        return (await self.bot.get_file(file_id, request_timeout=GET_FILE_SECONDS)).file_path

    @asynccontextmanager
    async def download(self, file_path: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """The file's bytes as an open response. Its URL holds the token: it never leaves this method."""
        bot = self.bot
        http = await bot.session.create_session()
        url = bot.session.api.file_url(bot.token, file_path)
        async with http.get(url, timeout=DOWNLOAD_TIMEOUT, allow_redirects=False) as response:
            yield response

    async def close(self) -> None:
        if self._bot is not None:
            await self._bot.session.close()


FILES = web.AppKey("telegram_files", TelegramFiles)


def setup(app: web.Application, settings: Settings) -> None:
    app[FILES] = TelegramFiles(settings)

    async def close(app: web.Application) -> None:
        await app[FILES].close()

    app.on_cleanup.append(close)


def picture_type(head: bytes) -> str | None:
    """The content type of a JPEG, PNG, GIF or WebP picture by its first bytes; None for anything else
    (whatever a server declares, only these are served, so nothing else can run in the page's origin)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _sorry(request: web.Request, found: Request, reason: str, status: int) -> web.Response:
    """A page in the viewer's language instead of a picture (the `<img>` shows as missing)."""
    return page(request, "attachment_missing.html", {"r": found, "reason": reason}, status=status)


async def _head(stream: aiohttp.StreamReader) -> bytes:
    head = b""
    while len(head) < 12:
        more = await stream.readany()
        if not more:
            break
        head += more
    return head


async def photo(request: web.Request) -> web.StreamResponse:
    """GET /requests/{id}/attachments/{index}: the photo's bytes, for staff who may see the request."""
    dash, who = dashboard(request), viewer(request)
    async with dash.database.sessions() as session:
        found = await visible_request(session, request)  # another community's, or none: 404 before anything
        attachments = describe(found.attachments)
    text = request.match_info["index"]
    index = int(text) if text.isascii() and text.isdigit() and len(text) <= MAX_INDEX_DIGITS else -1
    shown = attachments[index] if 0 <= index < len(attachments) else None
    if shown is None or shown.kind != "photo" or shown.file_id is None:
        return _sorry(request, found, "dashboard.attachment_not_found", 404)
    where = {"user_id": who.user_id, "request_id": found.id, "index": index}
    files = request.app[FILES]
    try:
        file_path = await files.path_of(shown.file_id)
    except (TelegramBadRequest, TelegramNotFound):
        log.info("dashboard photo gone", extra=where)
        return _sorry(request, found, "dashboard.attachment_gone", 404)
    except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as error:
        # The class only: an error's text may quote what was sent.
        log.warning("dashboard photo unavailable", extra={**where, "error": type(error).__name__})
        return _sorry(request, found, "dashboard.attachment_unreachable", 502)
    if not file_path:
        log.info("dashboard photo gone", extra=where)
        return _sorry(request, found, "dashboard.attachment_gone", 404)
    try:
        async with files.download(file_path) as upstream:
            if upstream.status != 200:
                gone = upstream.status in (400, 404, 410)
                log.log(logging.INFO if gone else logging.WARNING, "dashboard photo download refused",
                        extra={**where, "status": upstream.status})
                reason = "dashboard.attachment_gone" if gone else "dashboard.attachment_unreachable"
                return _sorry(request, found, reason, 404 if gone else 502)
            length = upstream.content_length
            head = await _head(upstream.content)
            content_type = picture_type(head)
            if content_type is None or (length is not None and length > MAX_BYTES):
                log.warning("dashboard photo not served",
                            extra={**where, "bytes": length, "picture": content_type is not None})
                return _sorry(request, found, "dashboard.attachment_unusable", 502)
            return await _stream(request, upstream, head, content_type, length, where)
    except (aiohttp.ClientError, TimeoutError) as error:  # before the first byte went out: a page can still say so
        log.warning("dashboard photo unavailable", extra={**where, "error": type(error).__name__})
        return _sorry(request, found, "dashboard.attachment_unreachable", 502)


async def _stream(request: web.Request, upstream: aiohttp.ClientResponse, head: bytes, content_type: str,
                  length: int | None, where: dict) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Cache-Control": CACHE_CONTROL})
    response.content_type = content_type
    if length is not None:
        response.content_length = length
    apply_security_headers(request, response)
    await response.prepare(request)
    sent, chunk = 0, head
    chunks = upstream.content.iter_chunked(CHUNK)
    while chunk:
        sent += len(chunk)
        if sent > MAX_BYTES:
            log.warning("dashboard photo too large", extra=where)
            raise ConnectionResetError("photo larger than the Bot API allows") from None
        try:
            await response.write(chunk)
        except ConnectionResetError:  # the browser went away; nothing to tell it
            return response
        try:
            chunk = await anext(chunks, b"")
        except (aiohttp.ClientError, TimeoutError) as error:
            # Bytes are already on their way: end the connection, so the browser sees a broken picture
            # rather than a short one.
            log.warning("dashboard photo interrupted", extra={**where, "error": type(error).__name__})
            raise ConnectionResetError("photo download interrupted") from None
    await response.write_eof()
    log.info("dashboard photo shown", extra={**where, "bytes": sent})
    return response


def routes() -> list[web.RouteDef]:
    return [web.get("/requests/{id}/attachments/{index}", photo)]
