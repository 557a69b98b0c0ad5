"""Intake classifier benchmark (SPEC §6 "intake speed"): speed on one core, model load, memory.

    python bench/classifier.py [--runs 15] [--repeat 3]

Prints one JSON object:
- throughput: messages/s on one core (the process is pinned to one CPU) over
  `runs` passes through the valid+test messages; median and p99 (the 99th
  percentile of the slow side, i.e. the 1st percentile of messages/s) over runs;
  per-message latency median and p99 in microseconds;
- load: seconds to import the package and load model + rules in a fresh
  process (median of several processes), and the model file size;
- memory: resident set size (VmHWM, the peak, and VmRSS at the end) of fresh
  processes: the classifier alone, and "worker-like" (SQLAlchemy, dramatiq and
  redis imported too, as the intake worker does), and the real intake worker
  module when it can be imported;
- bars: each SPEC bar with the measured value and pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DATA = REPO / "services" / "intake" / "data"

_PROBE = r"""
import json, resource, sys, time
start = time.perf_counter()
{imports}
from services.intake.classifier import load_classifier
classifier = load_classifier()
loaded = time.perf_counter() - start
classifier.classify("楼道灯坏了好几天了")
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
kb = lambda key: int(status[key].split()[0]) if key in status else None
print(json.dumps({{"load_s": loaded, "vm_hwm_kb": kb("VmHWM"), "vm_rss_kb": kb("VmRSS"),
                  "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "sklearn_or_scipy_imported": any(m.split(".")[0] in ("sklearn", "scipy") for m in sys.modules)}}))
"""


def _probe(imports: str) -> dict | None:
    code = _PROBE.format(imports=imports)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _messages() -> list[str]:
    texts = []
    for name in ("valid.jsonl", "test.jsonl"):
        path = DATA / name
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                texts += [json.loads(line)["text"] for line in handle if line.strip()]
    return texts or ["楼道灯坏了好几天了", "我想当志愿者", "冰箱里还有吃的吗"]


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def measure_speed(runs: int) -> dict:
    try:
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        pinned = True
    except (AttributeError, OSError):
        pinned = False
    from services.intake.classifier import load_classifier

    classifier = load_classifier()
    texts = _messages()
    for text in texts[:200]:  # warm up
        classifier.classify(text)
    rates = []
    latencies = []
    clock = time.perf_counter
    for run in range(runs):
        start = clock()
        if run == 0:
            for text in texts:
                t0 = clock()
                classifier.classify(text)
                latencies.append(clock() - t0)
        else:
            for text in texts:
                classifier.classify(text)
        rates.append(len(texts) / (clock() - start))
    return {
        "pinned_to_one_cpu": pinned,
        "messages_per_run": len(texts),
        "runs": runs,
        "messages_per_s_median": round(statistics.median(rates)),
        "messages_per_s_p99": round(_percentile(rates, 0.01)),
        "latency_us_median": round(statistics.median(latencies) * 1e6, 1),
        "latency_us_p99": round(_percentile(latencies, 0.99) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="passes over the messages for the speed figure")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes for the load and memory figures")
    args = parser.parse_args()

    speed = measure_speed(args.runs)
    alone = [_probe("") for _ in range(args.repeat)]
    worker_like = [_probe("import sqlalchemy, sqlalchemy.ext.asyncio, dramatiq, redis") for _ in range(args.repeat)]
    real_worker = _probe("import services.intake.worker")

    def med(rows, key):
        values = [row[key] for row in rows if row and key in row]
        return statistics.median(values) if values else None

    load_s = med(alone, "load_s")
    worker_mb = (med(worker_like, "vm_hwm_kb") or 0) / 1024
    model_file = REPO / "services" / "intake" / "model" / "model.npz"
    report = {
        "throughput": speed,
        "load": {
            "import_and_load_s_median": round(load_s, 3) if load_s is not None else None,
            "model_bytes": model_file.stat().st_size if model_file.exists() else None,
        },
        "memory_mb": {
            "classifier_alone_peak": round((med(alone, "vm_hwm_kb") or 0) / 1024, 1),
            "worker_like_peak": round(worker_mb, 1),
            "worker_like_rss": round((med(worker_like, "vm_rss_kb") or 0) / 1024, 1),
            "intake_worker_module_peak": (round(real_worker["vm_hwm_kb"] / 1024, 1)
                                          if real_worker and "vm_hwm_kb" in real_worker else real_worker),
            "sklearn_or_scipy_imported": any(row.get("sklearn_or_scipy_imported") for row in alone + worker_like if row),
        },
        "bars": {
            "messages_per_s_one_core>=2000": speed["messages_per_s_p99"] >= 2000,
            "model_load_s<1": load_s is not None and load_s < 1.0,
            "worker_rss_mb<150": 0 < worker_mb < 150,
        },
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
