"""Every dashboard text the templates and handlers name exists in Chinese and in English."""

import re
from pathlib import Path

from shared.i18n import catalogue
from shared.settings import REPO_ROOT

KEY = re.compile(r"""['"](dashboard\.[a-z_]+(?:\.[a-z_]+)?)['"]""")


def test_every_dashboard_key_is_in_both_catalogues():
    sources = [*Path(REPO_ROOT / "services" / "dashboard").rglob("*.py"),
               *Path(REPO_ROOT / "services" / "dashboard" / "templates").glob("*.html"),
               REPO_ROOT / "shared" / "staff_login.py"]
    used = {key for path in sources for key in KEY.findall(path.read_text(encoding="utf-8"))}
    assert len(used) > 80
    for locale in ("zh", "en"):
        missing = sorted(key for key in used if key not in catalogue(locale))
        assert missing == [], (locale, missing)
    zh = {k for k in catalogue("zh") if k.startswith("dashboard.")}
    en = {k for k in catalogue("en") if k.startswith("dashboard.")}
    assert zh == en
