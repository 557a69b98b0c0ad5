"""Translation catalogues: every user-facing string lives in `zh.yaml` / `en.yaml`,
plus one file per feature in `zh/` and `en/` (`zh/mediation.yaml` …), merged in name order.

`t(locale, key, **params)` formats with `str.format`; zh is the default and the
fallback when a key is missing in another locale.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
_DIR = Path(__file__).resolve().parent


def _flatten(prefix: str, node: object, out: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out)
    else:
        out[prefix] = str(node)


@lru_cache(maxsize=None)
def catalogue(locale: str) -> dict[str, str]:
    flat: dict[str, str] = {}
    files = [_DIR / f"{locale}.yaml", *sorted((_DIR / locale).glob("*.yaml"))]
    for path in files:
        part: dict[str, str] = {}
        _flatten("", yaml.safe_load(path.read_text(encoding="utf-8")) or {}, part)
        clash = flat.keys() & part.keys()
        if clash:
            raise ValueError(f"{path.name}: keys defined twice: {sorted(clash)[:5]}")
        flat.update(part)
    return flat


def normalize_locale(value: str | None) -> str:
    if value and value.split("-")[0].lower() in LOCALES:
        return value.split("-")[0].lower()
    return DEFAULT_LOCALE


def t(locale: str | None, key: str, **params: object) -> str:
    locale = normalize_locale(locale)
    text = catalogue(locale).get(key)
    if text is None:
        text = catalogue(DEFAULT_LOCALE)[key]  # KeyError here is a bug: a key missing everywhere
    return text.format(**params) if params else text
