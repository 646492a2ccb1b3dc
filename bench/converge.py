"""python3 -m bench.converge: what a deploy costs on three fresh hosts, and what a rerun costs.

    BENCH_SCENARIO=custom_site python3 -m bench.converge

Uses a Molecule scenario's hosts (custom_site: two app hosts and the monitoring host, the most
work a run does). It destroys and creates them, so it must not run beside `make test`.
Measured: the full site.yml on the fresh hosts (the scenario's first converge), the
idempotent rerun after integration (changed must be 0), `ansible all -m ping` on the same
hosts, tasks per host, and the slowest tasks of the rerun. Written to
BENCH_DIR/converge.json and printed.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = os.environ.get("BENCH_SCENARIO", "custom_site")
OUT = Path(os.environ.get("BENCH_DIR") or ROOT / ".cache" / "bench") / "converge.json"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)
SITE = ["ansible-playbook", "site.yml"]

# Records each task's wall time; the rerun's slowest tasks say where a converge's time goes.
TIMER = """
import json, os, time
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.rows, self.name, self.start = [], None, 0.0

    def _close(self):
        if self.name:
            self.rows.append([round(time.time() - self.start, 3), self.name])

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.name, self.start = task.get_name(), time.time()

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._close()
        with open(os.environ["BENCH_TASK_TIMES"], "w", encoding="utf-8") as handle:
            json.dump(self.rows, handle)
"""


def sh(command, env=None):
    """Run command from the project root; (seconds, output). A failure ends the benchmark."""
    start = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return seconds, result.stdout + result.stderr


def molecule(step):
    return sh(["molecule", step, "-s", SCENARIO])


def recap(output):
    """{host: {ok, changed, skipped, tasks}} from the last PLAY RECAP of output."""
    rows = {}
    for host, ok, changed, _unreachable, _failed, skipped in RECAP.findall(output):
        rows[host] = {"ok": int(ok), "changed": int(changed), "skipped": int(skipped)}
        rows[host]["tasks"] = rows[host]["ok"] + rows[host]["skipped"]
    return rows


def ephemeral_dir():
    found = sorted(Path.home().glob(f".ansible/tmp/molecule.*.{SCENARIO}"), key=lambda p: p.stat().st_mtime)
    if not found:
        sys.exit(f"no ephemeral directory of scenario {SCENARIO}")
    return found[-1]


def main():
    OUT.parent.mkdir(parents=True, exist_ok=True)
    molecule("destroy")
    try:
        molecule("create")
        molecule("prepare")
        eph = ephemeral_dir()
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(eph / "ansible.cfg"),
            ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
            ANSIBLE_NOCOLOR="1",
        )
        inventory = ["-i", str(eph / "inventory")]
        full, full_out = sh([*SITE, *inventory], env)  # every phase on the fresh hosts
        molecule("side-effect")  # the scenario's integration, so the reruns below are the steady state
        sh([*SITE, *inventory], env)
        pings = [sh(["ansible", "all", *inventory, "-m", "ansible.builtin.ping"], env)[0] for _ in range(5)]
        with tempfile.TemporaryDirectory() as plugins:
            Path(plugins, "bench_task_times.py").write_text(TIMER)
            times = Path(plugins, "times.json")
            timed = dict(
                env,
                ANSIBLE_CALLBACK_PLUGINS=plugins,
                ANSIBLE_CALLBACKS_ENABLED="bench_task_times",
                BENCH_TASK_TIMES=str(times),
            )
            reruns = [sh([*SITE, *inventory], timed) for _ in range(3)]
            task_times = json.loads(times.read_text())
    finally:
        molecule("destroy")
    rerun_recap = recap(reruns[-1][1])
    rerun = statistics.median(seconds for seconds, _ in reruns)
    ping = statistics.median(pings)
    result = {
        "scenario": SCENARIO,
        "hosts": len(rerun_recap),
        "full_site_seconds": round(full, 1),
        "full_site_recap": recap(full_out),
        "rerun_seconds_median_of_3": round(rerun, 1),
        "rerun_changed": sum(row["changed"] for row in rerun_recap.values()),
        "rerun_recap": rerun_recap,
        "ping_seconds_median_of_5": round(ping, 2),
        "rerun_to_ping": round(rerun / ping, 1),
        "slowest_rerun_tasks": sorted(task_times, reverse=True)[:15],
    }
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["rerun_changed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
