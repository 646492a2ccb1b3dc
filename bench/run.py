"""The benchmark's driver: sizes, disk check, each figure, the JSON results and the table."""

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from bench import figures, logs, storm
from bench.host import PACKAGE, PYTHON, ROOT, Host

UNITS = {"K": 2**10, "M": 2**20, "G": 2**30}
TARGETS = {
    "steady_cpu_ms": 50,
    "steady_flatness": 1.2,
    "seed_ratio": 30,
    "first_run_s": 1.0,
    "catch_up_mb_s": 100,
}


def parse_size(text):
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(float(text[:-1]) * UNITS[text[-1]]) if text[-1] in UNITS else int(text)


def settings(env=None):
    env = os.environ if env is None else env
    return {
        "sizes": sorted(parse_size(s) for s in env.get("BENCH_SIZES", "10M,100M,1G").split(",") if s.strip()),
        "runs": int(env.get("BENCH_RUNS", "5")),
        "dir": Path(env.get("BENCH_DIR") or ROOT / ".cache" / "bench"),
        "new_lines": int(env.get("BENCH_NEW_LINES", "10000")),
        "catch_up_mb": float(env.get("BENCH_CATCHUP_MB", "75")),
        "storm": int(env.get("BENCH_STORM", "10000")),
        "storm_window": int(env.get("BENCH_STORM_WINDOW", "5")),
    }


def check_disk(cfg):
    """Room for the logs not generated yet, what a run appends, and a margin."""
    cfg["dir"].mkdir(parents=True, exist_ok=True)
    missing = sum(s for s in cfg["sizes"] if not (cfg["dir"] / f"django-{s}.json").exists())
    need = missing + max(cfg["sizes"]) // 20 + int(cfg["catch_up_mb"] * 1e6) + 2**30
    free = shutil.disk_usage(cfg["dir"]).free
    if free < need:
        raise SystemExit(
            f"bench: {cfg['dir']} has {free / 2**30:.1f} GiB free, needs {need / 2**30:.1f} GiB "
            "(set BENCH_DIR or BENCH_SIZES)"
        )


def measure(cfg, say=print):
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": {"cpus": os.cpu_count(), "python": PYTHON, "platform": platform.platform()},
        "package": str(PACKAGE),
        "runs": cfg["runs"],
        "steady": {},
    }
    check_disk(cfg)
    with tempfile.TemporaryDirectory(prefix="pq-bench-") as scratch:
        host = Host(scratch)
        try:
            _figures(cfg, host, results, say)
        finally:
            host.close()
    results["verdict"] = verdict(results)
    return results


def _figures(cfg, host, results, say):
    """Each figure into results, on the logs of cfg's sizes."""
    paths = {}
    for size in cfg["sizes"]:
        say(f"bench: log of {size / 2**20:.0f} MiB in {cfg['dir']}")
        paths[size] = logs.base_log(cfg["dir"], size)
    for size in cfg["sizes"]:
        say(f"bench: steady state on {size / 2**20:.0f} MiB ({cfg['runs']} runs)")
        results["steady"][str(size)] = figures.steady(host, paths[size], cfg["runs"], cfg["new_lines"])
    largest = paths[max(cfg["sizes"])]
    say("bench: first run")
    results["first_run"] = figures.first_run(host, largest, cfg["runs"])
    say("bench: catch-up")
    results["catch_up"] = figures.catch_up(host, largest, cfg["runs"], cfg["catch_up_mb"])
    if cfg["storm"]:
        say(f"bench: alert storm of {cfg['storm']} CRITICAL lines")
        results["storm"] = storm.storm(host, cfg["storm"], cfg["storm_window"])


def verdict(results):
    steady = list(results["steady"].values())
    small, large = steady[0], steady[-1]
    out = {
        "steady_cpu_ms": max(s["cpu_ms"] for s in steady) <= TARGETS["steady_cpu_ms"],
        "steady_flatness": large["cpu_ms"] <= TARGETS["steady_flatness"] * small["cpu_ms"],
        "seed_ratio": (large["seed_ratio"] or 0) >= TARGETS["seed_ratio"],
        "first_run_s": results["first_run"]["wall_ms"] / 1000 < TARGETS["first_run_s"],
        "catch_up_mb_s": results["catch_up"]["mb_per_cpu_s"] >= TARGETS["catch_up_mb_s"],
    }
    if "storm" in results:
        storm_result = results["storm"]
        out["storm_one_message"] = all(n <= 1 for n in storm_result["messages_per_channel"].values())
        out["storm_exact_count"] = storm_result["held_count_in_next_message"] == storm_result["lines"] - 1
    return out


def table(results):
    """The README's table: each figure, its target, the seed beside it."""
    ok = results["verdict"]

    def mark(key):
        return "met" if ok.get(key) else "**not met**"

    rows = ["| figure | measured | target | seed's pipeline |", "| --- | --- | --- | --- |"]
    steady = results["steady"]
    for s in steady.values():
        rows.append(
            f"| `errors` run, {s['new_lines']:,} new lines, {s['log_mb']:,.0f} MiB log: CPU (peak RSS) | "
            f"{s['cpu_ms']} ms ({s['max_rss_mb']} MB) | ≤ 50 ms ({mark('steady_cpu_ms')}) | "
            f"{s['seed_cpu_ms']:,} ms ({s['seed_ratio']}x ours) |"
        )
    first, last = list(steady.values())[0], list(steady.values())[-1]
    rows.append(
        f"| CPU {last['log_mb']:,.0f} MiB / {first['log_mb']:,.0f} MiB | "
        f"{last['cpu_ms'] / first['cpu_ms']:.2f}x | ≤ 1.2x ({mark('steady_flatness')}) | "
        f"{last['seed_cpu_ms'] / first['seed_cpu_ms']:.0f}x |"
    )
    rows.append(
        f"| cheaper than the seed on {last['log_mb']:,.0f} MiB | {last['seed_ratio']}x | ≥ 30x "
        f"({mark('seed_ratio')}) | - |"
    )
    f = results["first_run"]
    rows.append(
        f"| first run on {f['log_mb']:,.0f} MiB (a {f['window_mb']} MB window): wall (CPU) | "
        f"{f['wall_ms'] / 1000:.2f} s ({f['cpu_ms'] / 1000:.2f} s), {f['lines_read']:,} lines read | < 1 s "
        f"({mark('first_run_s')}) | {last['seed_cpu_ms'] / 1000:.2f} s (reads it all, every run) |"
    )
    c = results["catch_up"]
    rows.append(
        f"| catch-up, a busy 5 minutes ({c['mb']} MB, {c['lines']:,} lines): MB per CPU second (wall) | "
        f"{c['mb_per_cpu_s']} MB/s ({c['mb_per_s']} MB/s), peak RSS {c['max_rss_mb']} MB | ≥ 100 MB/s "
        f"({mark('catch_up_mb_s')}) | - |"
    )
    if "storm" in results:
        s = results["storm"]
        per_channel = ", ".join(f"{k} {v}" for k, v in s["messages_per_channel"].items())
        rows.append(
            f"| alert storm, {s['lines']:,} CRITICAL lines in a minute, dedup window {s['window_s']} s: "
            f"messages per channel | {per_channel}; the next message says {s['held_count_in_next_message']} held "
            f"| ≤ 1 per channel ({mark('storm_one_message')}), exact count ({mark('storm_exact_count')}) | "
            f"one mail per run of the script |"
        )
        rows.append(
            f"| alert storm: the follower's CPU (with the alert commands it ran), wall, peak RSS | "
            f"{s['cpu_s']} s, {s['wall_s']} s, {s['max_rss_mb']} MB | - | - |"
        )
    return "\n".join(rows)


def main():
    cfg = settings()
    results = measure(cfg)
    out = cfg["dir"] / "results.json"
    out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"bench: results in {out}")
    return 0
