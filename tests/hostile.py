"""Hostile input for the bot's handlers: hypothesis strategies and real Telegram `Update`s of every kind.

Shared by the property tests (tests/pipeline/test_hostile_input.py). Updates are built the way
Telegram sends them (validated by aiogram's own models), including what a resident may send where
text is expected: stickers, voice, documents, contacts, locations, photos without a caption, dice.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from aiogram.types import Update
from hypothesis import strategies as st

from shared.flows import actions, dispatch
from shared.settings import REPO_ROOT
from tests.guards import remember

FIXED_NASTY = [
    "", " ", "\n\n\n", "\t", "\u200b\u200c\u200d\ufeff", "\u202e\u202dabc", "\u202eكسر", "مرحبا بالعالم", "שלום עולם",
    "😀" * 50, "🙂", "👍🏽‍♀️", "\x00\x01\x02\x7f", "\x1b[31mred", "a" * 4097, "灯" * 5000, "灯" * 4096,
    "<script>alert(1)</script>", "<b>粗</b><a href='x'>", "'; DROP TABLE users; --", "1 OR 1=1", "%s%d{0}{text}",
    "{number}", "${jndi:ldap://x}", "../../etc/passwd", "/start@other_bot", "/", "/unknown_command 1 2",
    "ＺＪＹ－２０２６－０００４２", "ZJY-2026-00001", "0", "-1", "99999999999999999999", "1.5e308", "NaN",
    "13912345678", "楼道灯坏了\x00", "我要投诉" + "\u0301" * 100,
]

hostile_text = st.one_of(
    st.sampled_from(FIXED_NASTY),
    st.text(max_size=80),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn"]), min_size=1, max_size=30),
    st.text(alphabet=st.sampled_from(list("😀👍🙂🔥❤️🏽\u200d")), min_size=1, max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0x590, max_codepoint=0x6FF), min_size=1, max_size=40),  # RTL
    st.builds(lambda ch, n: ch * n, st.sampled_from(["灯", "a", "😀", "\u200b"]), st.integers(4090, 4200)),
    st.builds(lambda a, b: a + b, st.sampled_from(FIXED_NASTY), st.text(max_size=20)),
)

NON_TEXT = ("sticker", "voice", "document", "contact", "location", "photo", "dice", "video_note", "animation")


def awaited_steps() -> list[str]:
    """Every conversation step that waits for typed text, found in the flows' source.

    Discovered rather than listed, so a flow added later (another feature's branch) is covered
    as soon as it is merged: `"await": "<step>"` or `["await"] = "<step>"` in shared/flows.
    """
    pattern = re.compile(r"""["']await["']\]?\s*[:=]\s*["']([a-z_]+)["']""")
    found = set(dispatch.RESIDENT_AWAITS)
    for path in sorted(Path(REPO_ROOT, "shared", "flows").glob("*.py")):
        found.update(pattern.findall(path.read_text(encoding="utf-8")))
    return sorted(found)


def verbs() -> list[str]:
    """Every callback verb, read from the registry at run time (so merged features are covered)."""
    return sorted(actions.VERBS)


OPS = ["yes", "no", "ok", "take", "claim", "start", "done", "rel", "adj", "view", "reply", "cat", "move", "res",
       "menu", "stock", "give", "sub", "unsub", "recv", "manage", "check", "cancel", "rm", "gone", "list",
       "search", "mine", "points", "wishes", "save", "skip", "house", "owner", "today", "tomorrow", "d3", "pick",
       "clean", "expired", "report", "requests", "language", "help", "behalf", "fridge", "zh", "en", "fr",
       "repair", "safety", "other", "errands", "companionship", "mon", "am", "good", "1", "5", "0", "-1"]


def forged_data(pool: list[str]) -> st.SearchStrategy[str]:
    """Callback data as a forger (or an old client) might send it: well-formed with foreign or missing
    objects, wrong arity, truncated, malformed, oversize, or not from us at all."""
    arg = st.one_of(st.sampled_from(pool), st.sampled_from(OPS), st.from_regex(r"[A-Za-z0-9_\-]{1,32}", fullmatch=True))
    well_formed = st.sampled_from(verbs()).flatmap(
        lambda verb: st.lists(arg, min_size=actions.VERBS[verb], max_size=actions.VERBS[verb])
        .map(lambda args, verb=verb: ":".join([verb, *args])))
    wrong_arity = st.builds(lambda verb, args: ":".join([verb, *args]), st.sampled_from(verbs()),
                            st.lists(arg, max_size=4))
    truncated = st.builds(lambda data, cut: data[:cut], well_formed, st.integers(0, 63))
    garbage = st.one_of(st.text(max_size=70), st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
                        st.sampled_from(["", ":", "::", "st::", "menu:", ":menu", "x" * 64, "x" * 65, "st:view:1:2"]))
    return st.one_of(well_formed, well_formed, wrong_arity, truncated, garbage)


class Hostile:
    """Builds updates with ids of its own (distinct from `tests.fakes.Updates`' counters)."""

    def __init__(self) -> None:
        self._ids = itertools.count(900_000_000)

    def _base(self, user_id: int, chat_id: int | None = None) -> dict[str, Any]:
        chat_id = chat_id or user_id
        return {
            "message_id": next(self._ids), "date": int(datetime.now().timestamp()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": {"id": user_id, "is_bot": False, "first_name": "王阿姨", "language_code": "zh"},
        }

    def content(self, user_id: int, kind: str, *, caption: str | None = None) -> Update:
        """A message of `kind` (one of NON_TEXT) in the person's private chat."""
        file = {"file_id": f"F{next(self._ids)}", "file_unique_id": f"U{next(self._ids)}"}
        body = self._base(user_id)
        if kind == "sticker":
            body["sticker"] = {**file, "type": "regular", "width": 512, "height": 512, "is_animated": False,
                               "is_video": False, "emoji": "😀"}
        elif kind == "voice":
            body["voice"] = {**file, "duration": 3}
        elif kind == "document":
            body["document"] = {**file, "file_name": "投诉材料.pdf", "mime_type": "application/pdf"}
        elif kind == "contact":
            body["contact"] = {"phone_number": "13912345678", "first_name": "王", "user_id": user_id}
            remember("13912345678")
        elif kind == "location":
            body["location"] = {"latitude": 36.06, "longitude": 103.83}
        elif kind == "photo":
            body["photo"] = [{**file, "width": 90, "height": 90}]
        elif kind == "dice":
            body["dice"] = {"emoji": "🎲", "value": 3}
        elif kind == "video_note":
            body["video_note"] = {**file, "length": 240, "duration": 2}
        elif kind == "animation":
            body["animation"] = {**file, "width": 100, "height": 100, "duration": 1}
            body["document"] = {**file}
        else:
            raise ValueError(kind)
        if caption is not None and kind in ("photo", "document", "voice", "animation"):
            body["caption"] = caption
        return Update.model_validate({"update_id": next(self._ids), "message": body})

    def text(self, user_id: int, text: str, chat_id: int | None = None) -> Update:
        body = {**self._base(user_id, chat_id), "text": text}
        return Update.model_validate({"update_id": next(self._ids), "message": body})

    def press(self, user_id: int, data: str, *, message_id: int = 1, chat_id: int | None = None) -> Update:
        chat_id = chat_id or user_id
        return Update.model_validate({
            "update_id": next(self._ids),
            "callback_query": {
                "id": str(next(self._ids)),
                "from": {"id": user_id, "is_bot": False, "first_name": "王阿姨", "language_code": "zh"},
                "chat_instance": "ci", "data": data,
                "message": {"message_id": message_id, "date": int(datetime.now().timestamp()),
                            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                            "from": {"id": 7000000001, "is_bot": True, "first_name": "Linju"}, "text": "…"},
            },
        })
