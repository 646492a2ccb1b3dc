"""The benchmark suite (bench/, make bench) on tiny sizes, so it cannot rot: every figure is produced,
the logs are in the app's format and reused, the seed's pipeline runs beside ours, the storm's verdict holds."""

import sys

import pytest
from conftest import ROOT
from peerquest_ops.monitors.logline import LINE_TIME

if str(ROOT) not in sys.path:  # bench/ is at the top of the repository, not a package the hosts get
    sys.path.insert(0, str(ROOT))

from bench import figures, logs, run  # noqa: E402
from bench.host import Host  # noqa: E402


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cfg = run.settings(
        {
            "BENCH_SIZES": "256K,512K",
            "BENCH_RUNS": "1",
            "BENCH_DIR": str(tmp_path_factory.mktemp("bench")),
            "BENCH_NEW_LINES": "2000",
            "BENCH_CATCHUP_MB": "1",
            "BENCH_STORM": "300",
            "BENCH_STORM_WINDOW": "2",
        }
    )
    return run.measure(cfg, say=lambda text: None), cfg


def test_every_figure_is_measured_and_tabled(results):
    result, _cfg = results
    sizes = [s["log_mb"] for s in result["steady"].values()]
    assert len(sizes) == 2 and 0.2 <= sizes[0] < sizes[1] <= 0.6
    for steady in result["steady"].values():
        assert steady["all_ok"] and steady["cpu_ms"] > 0 and steady["seed_cpu_ms"] > 0 and steady["max_rss_mb"] > 0
        assert steady["lines_read"] == 2000  # the new lines, not the log
    assert 0 < result["first_run"]["lines_read"] < 2 * result["first_run"]["window_lines"]
    assert result["catch_up"]["mb"] >= 1 and result["catch_up"]["mb_per_cpu_s"] > 0
    table = run.table(result)
    assert table.count("\n") >= 7 and "≤ 50 ms" in table and "≥ 30x" in table and "≥ 100 MB/s" in table


def test_the_storm_sends_one_message_per_channel_and_the_exact_count(results):
    storm = results[0]["storm"]
    assert storm["finished"]
    assert storm["messages_per_channel"] == {"slack": 1, "discord": 1, "webhook": 1}
    assert storm["held_count_in_next_message"] == 299
    assert results[0]["verdict"]["storm_one_message"] and results[0]["verdict"]["storm_exact_count"]


def test_logs_are_the_apps_verbose_format_and_are_reused(results):
    _result, cfg = results
    path = logs.base_log(cfg["dir"], run.parse_size("256K"))
    before = path.stat().st_mtime_ns
    assert logs.base_log(cfg["dir"], run.parse_size("256K")).stat().st_mtime_ns == before  # reused
    stamped = [line for line in path.read_text().splitlines() if LINE_TIME.match(line)]
    assert len(stamped) > 1000
    level, _date, _time, module, process, thread = stamped[0].split(" ")[:6]
    assert level in {"INFO", "WARNING", "ERROR"} and module.isidentifier() and process.isdigit() and thread.isdigit()
    # A size that no longer matches is generated again.
    with open(path, "ab") as handle:
        handle.write(b"x\n")
    assert logs.base_log(cfg["dir"], run.parse_size("256K")).stat().st_size != before


def test_the_seeds_pipeline_is_its_error_monitor_sh(tmp_path):
    script = figures.seed_script(tmp_path / "errors.log")
    assert 'grep "$p" ' in script and """grep "$(date '+%Y-%m-%d %H')" | wc -l""" in script
    assert script.startswith('for p in "CRITICAL:" "Application approval failed"; do grep')


def test_a_child_is_measured_by_the_kernel_and_not_charged_with_the_benchmarks_memory(tmp_path):
    host = Host(tmp_path)
    ballast = b"x" * (300 * 2**20)  # the benchmark's own memory (a generated log) must not show as the child's
    try:
        busy = host.shell("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
    finally:
        host.close()
    assert len(ballast) and busy.code == 0 and busy.cpu > 0.01 and 0 < busy.max_rss_mb < 100


def test_sizes_parse():
    assert [run.parse_size(s) for s in ("10M", "100MiB", "1G", "512K", "4096")] == [
        10 << 20,
        100 << 20,
        1 << 30,
        512 << 10,
        4096,
    ]


def test_the_converge_benchmark_reads_each_host_s_recap():
    from bench.converge import recap

    out = """PLAY RECAP *********************************************************************
pq-a-app1                  : ok=141  changed=0    unreachable=0    failed=0    skipped=139  rescued=0    ignored=0
pq-a-sink                  : ok=81   changed=2    unreachable=0    failed=0    skipped=36   rescued=0    ignored=0
"""
    assert recap(out) == {
        "pq-a-app1": {"ok": 141, "changed": 0, "skipped": 139, "tasks": 280},
        "pq-a-sink": {"ok": 81, "changed": 2, "skipped": 36, "tasks": 117},
    }
