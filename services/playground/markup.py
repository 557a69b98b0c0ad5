"""reply_markup validation: inline keyboards, reply keyboards, keyboard removal."""

from __future__ import annotations

from typing import Any

from services.playground.errors import bad_request

INLINE_ACTIONS = ("callback_data", "url", "web_app", "login_url", "switch_inline_query",
                  "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
                  "callback_game", "pay")


def inline_keyboard(rows: Any) -> list[list[dict[str, Any]]]:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('can\'t parse inline keyboard button: field "inline_keyboard" must be an Array of Arrays')
    checked: list[list[dict[str, Any]]] = []
    for row in rows:
        out: list[dict[str, Any]] = []
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request("can't parse inline keyboard button: Text must be a String")
            if not any(button.get(action) not in (None, "") for action in INLINE_ACTIONS):
                raise bad_request("text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and (not isinstance(data, str) or not 1 <= len(data.encode()) <= 64):
                raise bad_request("BUTTON_DATA_INVALID")
            out.append({key: value for key, value in button.items() if value is not None})
        if out:
            checked.append(out)
    return checked


def reply_keyboard(markup: dict[str, Any]) -> dict[str, Any]:
    rows = markup.get("keyboard")
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('can\'t parse reply keyboard markup JSON object: field "keyboard" must be an Array of Arrays')
    normalized = []
    for row in rows:
        buttons = []
        for button in row:
            if isinstance(button, str):
                button = {"text": button}
            if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
                raise bad_request("can't parse keyboard button: Text must be a String")
            buttons.append({key: value for key, value in button.items() if value not in (None, False)})
        if buttons:
            normalized.append(buttons)
    if not normalized:
        raise bad_request("keyboard must be non-empty")
    return {"rows": normalized, "one_time": bool(markup.get("one_time_keyboard")),
            "resize": bool(markup.get("resize_keyboard")), "placeholder": markup.get("input_field_placeholder"),
            "persistent": bool(markup.get("is_persistent"))}


def parse(markup: Any, *, inline_only: bool = False) -> dict[str, Any]:
    """Message fields for a reply_markup: inline_keyboard / reply_keyboard / removes_keyboard."""
    if markup is None:
        return {}
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        return {"inline_keyboard": inline_keyboard(markup["inline_keyboard"]) or None}
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        return {"reply_keyboard": reply_keyboard(markup)}
    if markup.get("remove_keyboard"):
        return {"removes_keyboard": True}
    if markup.get("force_reply"):
        return {}
    raise bad_request("can't parse reply keyboard markup JSON object")
