"""parse_mode handling: HTML, MarkdownV2 and legacy Markdown into text + entities.

Offsets and lengths are in UTF-16 code units, as in Telegram.  Malformed markup
is rejected with Telegram's "Bad Request: can't parse entities: ..." error, so a
bot that would fail on Telegram fails here too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from services.playground.errors import bad_request

HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "code": "code", "pre": "pre",
    "a": "text_link", "tg-spoiler": "spoiler", "span": "spoiler", "blockquote": "blockquote",
}
MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class ParseError(Exception):
    pass


def _fail(reason: str) -> Exception:
    return bad_request(f"can't parse entities: {reason}")


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._at = 0
        self.stack: list[tuple[str, dict[str, Any] | None, int]] = []
        self.entities: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = HTML_TAGS.get(tag)
        attr = dict(attrs)
        if kind is None or (tag == "span" and attr.get("class") != "tg-spoiler"):
            raise ParseError(f'Unsupported start tag "{tag}" at byte offset {self.getpos()[1]}')
        entity: dict[str, Any] | None = {"type": kind}
        if tag == "a":
            href = attr.get("href") or ""
            entity["url"] = href
        if tag == "code" and self.stack and self.stack[-1][0] == "pre":
            pre = self.stack[-1][1]
            language = (attr.get("class") or "").removeprefix("language-")
            if pre is not None and language:
                pre["language"] = language
            entity = None  # <pre><code> is a single pre entity
        self.stack.append((tag, entity, self._at))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            raise ParseError(f'Unmatched end tag at byte offset {self.getpos()[1]}, expected "</{self.stack[-1][0]}>", '
                             f'found "</{tag}>"' if self.stack else f'Unexpected end tag "{tag}"')
        _, entity, start = self.stack.pop()
        if entity is not None and self._at > start:
            entity.update(offset=start, length=self._at - start)
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self._at += utf16_len(data)


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    parser = _Html()
    try:
        parser.feed(source)
        parser.close()
    except ParseError as exc:
        raise _fail(str(exc)) from None
    if parser.stack:
        raise _fail(f'Can\'t find end tag corresponding to start tag "{parser.stack[-1][0]}"')
    return "".join(parser.parts), parser.entities


_MD_MARKERS_V2 = [("```", "pre"), ("||", "spoiler"), ("__", "underline"), ("*", "bold"), ("_", "italic"),
                  ("~", "strikethrough"), ("`", "code")]
_MD_MARKERS_V1 = [("```", "pre"), ("*", "bold"), ("_", "italic"), ("`", "code")]


def parse_markdown(source: str, v2: bool) -> tuple[str, list[dict[str, Any]]]:
    markers = _MD_MARKERS_V2 if v2 else _MD_MARKERS_V1
    out: list[str] = []
    offset = 0
    stack: list[tuple[str, dict[str, Any], int, int]] = []  # marker, entity, start offset, source index
    entities: list[dict[str, Any]] = []
    i = 0

    def emit(text: str) -> None:
        nonlocal offset
        out.append(text)
        offset += utf16_len(text)

    while i < len(source):
        char = source[i]
        in_code = bool(stack) and stack[-1][0] in ("`", "```")
        if char == "\\" and i + 1 < len(source) and (v2 or source[i + 1] in "_*`["):
            emit(source[i + 1])
            i += 2
            continue
        if in_code:
            closing = stack[-1][0]
            if source.startswith(closing, i):
                _, entity, start, _ = stack.pop()
                if offset > start:
                    entities.append({**entity, "offset": start, "length": offset - start})
                i += len(closing)
            else:
                emit(char)
                i += 1
            continue
        marker = next((m for m, _ in markers if source.startswith(m, i)), None)
        if marker is not None:
            kind = dict(markers)[marker]
            if stack and stack[-1][0] == marker:
                _, entity, start, _ = stack.pop()
                if offset > start:
                    entities.append({**entity, "offset": start, "length": offset - start})
            else:
                entity: dict[str, Any] = {"type": kind}
                i += len(marker)
                if marker == "```":  # optional language on the first line
                    newline = source.find("\n", i)
                    first = source[i:newline] if newline >= 0 else ""
                    if newline >= 0 and re.fullmatch(r"[\w+#-]*", first):
                        if first:
                            entity["language"] = first
                        i = newline + 1
                stack.append((marker, entity, offset, i))
                continue
            i += len(marker)
            continue
        if char == "[":
            close = source.find("](", i)
            end = source.find(")", close) if close >= 0 else -1
            if close < 0 or end < 0:
                if v2:
                    raise _fail(f"Character '[' is reserved and must be escaped with the preceding '\\'")
                raise _fail(f"Can't find end of the entity starting at byte offset {len(source[:i].encode())}")
            inner_text, inner_entities = parse_markdown(source[i + 1:close], v2)
            start = offset
            for entity in inner_entities:
                entities.append({**entity, "offset": entity["offset"] + start})
            emit(inner_text)
            url = source[close + 2:end].replace("\\)", ")").replace("\\\\", "\\")
            if offset > start:
                entities.append({"type": "text_link", "offset": start, "length": offset - start, "url": url})
            i = end + 1
            continue
        if v2 and char in MDV2_RESERVED:
            raise _fail(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
        emit(char)
        i += 1
    if stack:
        marker, entity, _, index = stack[-1]
        raise _fail(f"Can't find end of {entity['type'].capitalize()} entity at byte offset "
                    f"{len(source[:index - len(marker)].encode())}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def apply_parse_mode(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[dict[str, Any]] | None]:
    """Returns the visible text and its entities (explicit entities win over parse_mode)."""
    if entities:
        return text, list(entities)
    mode = (parse_mode or "").strip().lower()
    if not mode:
        return text, None
    if mode == "html":
        plain, found = parse_html(text)
    elif mode == "markdownv2":
        plain, found = parse_markdown(text, v2=True)
    elif mode == "markdown":
        plain, found = parse_markdown(text, v2=False)
    else:
        raise bad_request("unsupported parse_mode")
    found.sort(key=lambda e: (e["offset"], -e["length"]))
    return plain, found or None


def command_entities(text: str) -> list[dict[str, Any]]:
    """bot_command entities, as Telegram attaches them to a user's message."""
    return [{"type": "bot_command", "offset": utf16_len(text[:m.start()]), "length": utf16_len(m.group())}
            for m in COMMAND_RE.finditer(text)]
