"""`make bench [B=name]`: run the benchmarks under bench/ and collect their figures.

Each benchmark is a script `bench/<name>.py` that prints one JSON object on its
last line of stdout. The runner adds the machine and versions and writes
`bench/results/latest.json` plus a readable table. Benchmarks report figures;
they never pass or fail CI.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("aiogram", "dramatiq", "sqlalchemy", "redis", "asyncpg", "aiosqlite", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "versions": versions}


def available() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_"))


def last_json(lines: list[str]) -> dict[str, object]:
    """The JSON object a benchmark printed last: its last line, or (pretty-printed) the lines from
    the last one that opens an object at the margin."""
    for start in [len(lines) - 1, *(i for i in range(len(lines) - 1, -1, -1) if lines[i] == "{")]:
        try:
            return json.loads("\n".join(lines[start:]))
        except (json.JSONDecodeError, IndexError):
            continue
    return {"error": "no JSON object at the end of stdout", "stdout_tail": lines[-5:]}


def run(name: str) -> dict[str, object]:
    started = time.time()
    proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py")], capture_output=True, text=True,
                          cwd=BENCH.parent, timeout=1800)
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    figures = last_json(lines)
    if proc.returncode != 0:
        figures = {"error": f"exit {proc.returncode}", "stderr_tail": proc.stderr.strip().splitlines()[-10:]}
    return {"seconds": round(time.time() - started, 1), "figures": figures}


def main(argv: list[str]) -> None:
    names = [argv[0]] if argv and argv[0] else available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        raise SystemExit(f"unknown benchmark {unknown}; available: {', '.join(available())}")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report = {"machine": machine(), "when": now, "benchmarks": {}}
    latest = RESULTS / "latest.json"
    if len(names) < len(available()) and latest.exists():
        # One benchmark alone updates its entry and keeps the others' (each entry says when it ran).
        report["benchmarks"] = json.loads(latest.read_text()).get("benchmarks", {})
    for name in names:
        print(f"== {name}", flush=True)
        report["benchmarks"][name] = {"when": now, **run(name)}
        for key, value in report["benchmarks"][name]["figures"].items():
            print(f"   {key:<32} {json.dumps(value, ensure_ascii=False)}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"\nmachine: {report['machine']['cores']} cores, {report['machine']['cpu']}; written bench/results/latest.json")


if __name__ == "__main__":
    main(sys.argv[1:])
