"""Numbered options: rendering and reading answers (pure, no homeserver)."""

from __future__ import annotations

from services.matrix import options as opts
from services.matrix.channel import _command
from shared.flows.reply import Button, Reply, rows

REPLY = Reply("请选择语言 <b>", rows(Button("中文", "lang:zh"), Button("English", "lang:en")))


def test_a_reply_becomes_a_numbered_list_with_escaped_html():
    content = opts.content(REPLY)
    assert content["body"] == "请选择语言 <b>\n\n1. 中文\n2. English"
    assert content["formatted_body"] == "请选择语言 &lt;b&gt;<ol><li>中文</li><li>English</li></ol>"
    edit = opts.edit_content("$offer", Reply("taken"))
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$offer"}
    assert edit["m.new_content"]["body"] == "taken" and edit["body"] == "* taken"


def test_answers_by_number_words_or_out_of_range():
    options = opts.flat(REPLY)
    assert opts.choose("2", options) == opts.Choice("lang:en", 2)
    assert opts.choose(" １ ", options) == opts.Choice("lang:zh", 1)
    assert opts.choose("english", options) == opts.Choice("lang:en")
    assert opts.choose("3", options) == opts.Choice(None, 3)
    assert opts.choose("0", options) == opts.Choice(None, 0)
    assert opts.choose("99999", options) is None       # not an option number at all: plain text
    assert opts.choose("楼道灯坏了", options) is None
    assert opts.choose("", []) is None


def test_reply_fallback_commands_and_reactions():
    assert opts.strip_reply_fallback("> <@bot:x> 1. 中文\n> 2. English\n\n2") == "2"
    assert _command("!menu") == ("menu", None)
    assert _command("/request ZJY-2026-0001") == ("request", "ZJY-2026-0001")
    assert _command("!rm -rf") is None and _command("menu") is None and _command("") is None
    assert [opts.reaction_number(k) for k in ("1️⃣", "🔟", "4", "👍", "")] == [1, 10, 4, None, None]
