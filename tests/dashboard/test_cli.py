"""The operator commands this issue adds: `db upgrade`, `users promote/demote`, `export requests/hours`."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from shared.settings import REPO_ROOT


def linju(db_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db_file}", "LOG_FORMAT": "text", "BROKER": "stub",
           "REDIS_URL": ""}
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_operator_commands(tmp_path):
    db_file = tmp_path / "ops.db"
    assert linju(db_file, "db", "upgrade").returncode == 0
    assert linju(db_file, "demo", "load").returncode == 0
    promoted = linju(db_file, "users", "promote", "424242", "--role", "staff", "--community", "zjy")
    assert promoted.returncode == 0 and "is now staff in zjy" in promoted.stdout
    demoted = linju(db_file, "users", "demote", "424242", "--role", "staff")
    assert demoted.returncode == 0 and "is no longer staff" in demoted.stdout
    again = linju(db_file, "users", "demote", "424242", "--role", "staff")
    assert "was not staff" in again.stdout
    bad = linju(db_file, "users", "promote", "424242", "--role", "staff", "--community", "nowhere")
    assert bad.returncode != 0 and "unknown community" in bad.stderr
    # Someone who never chose a community cannot become staff of "whichever they pick first".
    unscoped = linju(db_file, "users", "promote", "777001", "--role", "staff")
    assert unscoped.returncode != 0 and "--community" in unscoped.stderr
    still_resident = linju(db_file, "users", "demote", "777001", "--role", "staff")
    assert "was not staff" in still_resident.stdout
    # A volunteer needs no community from the operator: residents choose their own.
    volunteer = linju(db_file, "users", "promote", "777002", "--role", "volunteer")
    assert volunteer.returncode == 0 and "is now volunteer" in volunteer.stdout

    export = linju(db_file, "export", "requests", "--month", "2026-11", "--community", "zjy")
    assert export.returncode == 0
    header = next(csv.reader(io.StringIO(export.stdout)))
    assert header[:4] == ["number", "community", "category", "status"]
    hours = linju(db_file, "export", "hours", "--month", "2026-11")
    assert hours.returncode == 0 and hours.stdout.startswith("community,volunteer,tasks")
    wrong = linju(db_file, "export", "hours", "--month", "November")
    assert wrong.returncode != 0 and "--month must look like 2026-11" in wrong.stderr
