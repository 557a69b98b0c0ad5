"""The main menu, reached after onboarding and from the `other` label."""

from __future__ import annotations

from shared.flows import actions
from shared.flows.reply import Button, Reply, rows
from shared.flows.texts import brand_name, community_name
from shared.i18n import t


def main_menu_buttons(locale: str) -> tuple[tuple[Button, ...], ...]:
    return rows(
        Button(t(locale, "menu.report"), actions.make("menu", "report")),
        Button(t(locale, "menu.my_requests"), actions.make("menu", "requests")),
        Button(t(locale, "menu.behalf"), actions.make("menu", "behalf")),
        Button(t(locale, "menu.volunteer"), actions.make("vr", "start")),
        Button(t(locale, "fridge.menu_button"), actions.make("menu", "fridge")),
        Button(t(locale, "books.menu_button"), actions.make("bk", "menu")),
        Button(t(locale, "deliberation.menu_button"), actions.make("dlm", "list")),
        Button(t(locale, "activities.menu_button"), actions.make("ac", "menu")),
        Button(t(locale, "menu.language"), actions.make("menu", "language")),
        Button(t(locale, "menu.help"), actions.make("menu", "help")),
    )


def main_menu(config, community_code: str, locale: str) -> Reply:  # type: ignore[no-untyped-def]
    text = t(
        locale,
        "menu.title",
        community=community_name(config, community_code, locale),
        brand=brand_name(config, community_code, locale),
    )
    return Reply(text, main_menu_buttons(locale))
