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


def run(name: str) -> dict[str, object]:
    started = time.time()
    proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py")], capture_output=True, text=True,
                          cwd=BENCH.parent, timeout=1800)
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    try:
        figures = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        figures = {"error": "last line was not JSON", "stdout_tail": lines[-5:]}
    if proc.returncode != 0:
        figures = {"error": f"exit {proc.returncode}", "stderr_tail": proc.stderr.strip().splitlines()[-10:]}
    return {"seconds": round(time.time() - started, 1), "figures": figures}


def main(argv: list[str]) -> None:
    names = [argv[0]] if argv and argv[0] else available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        raise SystemExit(f"unknown benchmark {unknown}; available: {', '.join(available())}")
    report = {"machine": machine(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "benchmarks": {}}
    for name in names:
        print(f"== {name}", flush=True)
        report["benchmarks"][name] = run(name)
        for key, value in report["benchmarks"][name]["figures"].items():
            print(f"   {key:<32} {json.dumps(value, ensure_ascii=False)}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"\nmachine: {report['machine']['cores']} cores, {report['machine']['cpu']}; written bench/results/latest.json")


if __name__ == "__main__":
    main(sys.argv[1:])
