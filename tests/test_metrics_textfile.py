"""The monitors' figures for node_exporter's textfile collector (peerquest_ops.metrics).

Each scheduled job replaces <dir>/peerquest_<job>.prom atomically (a hidden
temporary file in the same directory, renamed over the old one, mode 0644)
with its last run, last success, duration and exit code, plus its own
figures; the follower keeps a heartbeat; a directory that cannot be written
never stops a monitor.
"""

import json
import os
import re
import stat
import time

import pytest
from conftest import ERROR_RATE, scratch_monitor
from peerquest_ops.metrics import live, names, runs, textfile
from peerquest_ops.monitors import cli, dbwatch, follow, integrity, performance

# The names the phase 3 contract fixes (recording and alerting rules use them).
CONTRACT_NAMES = {
    "peerquest_monitor_last_run_timestamp_seconds",
    "peerquest_monitor_last_success_timestamp_seconds",
    "peerquest_monitor_duration_seconds",
    "peerquest_monitor_exit_code",
    "peerquest_integrity_last_audit_timestamp_seconds",
    "peerquest_integrity_issues",
    "peerquest_log_pattern_matches",
    "peerquest_log_pattern_threshold",
    "peerquest_slow_operations",
    "peerquest_database_errors",
    "peerquest_follower_heartbeat_timestamp_seconds",
}
# Prometheus' text format: a sample line, name{labels} value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')

PATTERNS = [
    {"name": "approval_failed", "label": "x", "regex": "Application approval failed", "severity": "WARNING",
     "threshold": 3},
    {"name": "rollback", "label": "y", "regex": "Transaction rolled back", "severity": "CRITICAL", "threshold": 0},
]  # fmt: skip


def samples(path):
    """{name: {labels text: value}} of a .prom file, every line checked against the format."""
    found = {}
    for line in path.read_text().splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        found.setdefault(match.group(1), {})[match.group(2) or ""] = float(match.group(3))
    return found


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    monkeypatch.setattr(textfile, "_WARNED", set())
    monkeypatch.setattr(live, "_LAST", {})


@pytest.fixture
def prom(tmp_path):
    directory = tmp_path / "textfile"
    directory.mkdir()
    return directory


def config_file(tmp_path, textfile_dir):
    """A complete monitors.json (what check-config accepts) on scratch paths."""
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    log = tmp_path / "django.log"
    log.touch()
    config = {
        "host": "app1",
        "state_dir": str(state),
        "alert_command": "/bin/true",
        "errors": {
            "log_file": str(log),
            "window_seconds": 3600,
            "patterns": PATTERNS,
            "rates": [],
            "error_rate": ERROR_RATE,
        },
        "performance": {"log_file": str(log), "window_seconds": 3600,
                        "duration_regex": r"took (?P<value>\d+)(?P<unit>s)", "slow_seconds": 5, "slow_threshold": 10,
                        "slow_severity": "WARNING", "degradation_percent": 200,
                        "degradation_severity": "WARNING", "min_samples": 3},
        "health": {"token": ""},
        "integrity": {},
        "selfcheck": {},
        "follow": {"enabled": False, "patterns": []},
        "metrics": {"textfile_dir": str(textfile_dir)},
    }  # fmt: skip
    path = tmp_path / "monitors.json"
    path.write_text(json.dumps(config))
    return path, log


# ----------------------------------------------------------- the file itself


def test_write_replaces_the_file_atomically_0644_and_leaves_no_temporary(prom, monkeypatch):
    assert textfile.write(str(prom), "errors", [(names.SLOW_OPERATIONS, "gauge", [({}, 1)])])
    target = prom / "peerquest_errors.prom"
    replaced = []
    real_replace = os.replace

    def watching_replace(src, dst):
        # The new text is complete in a file of the same directory that the collector ignores,
        # while the old file is still whole.
        assert os.path.dirname(src) == str(prom) and not src.endswith(".prom")
        assert "} 7" not in open(dst).read() and open(src).read().endswith(" 7\n")
        replaced.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    assert textfile.write(str(prom), "errors", [(names.SLOW_OPERATIONS, "gauge", [({}, 7)])])
    assert replaced == [str(target)]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in prom.iterdir()) == ["peerquest_errors.prom"]
    assert samples(target) == {"peerquest_slow_operations": {"": 7.0}}


def test_render_escapes_label_values_and_writes_help_and_type():
    text = textfile.render([(names.PATTERN_MATCHES, "gauge", [({"pattern": 'a"b\\c\nd'}, 2)])])
    assert text.splitlines() == [
        f"# HELP {names.PATTERN_MATCHES} {names.HELP[names.PATTERN_MATCHES]}",
        f"# TYPE {names.PATTERN_MATCHES} gauge",
        'peerquest_log_pattern_matches{pattern="a\\"b\\\\c\\nd"} 2',
    ]


def test_every_name_is_the_contract_s_and_has_help():
    declared = {value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}
    assert declared == CONTRACT_NAMES
    assert set(names.HELP) == CONTRACT_NAMES


# ------------------------------------------------------ a job run through cli


def test_a_job_records_its_run_and_its_figures(tmp_path, prom):
    config, log = config_file(tmp_path, prom)
    now = time.strftime("%Y-%m-%d %H:%M:%S,000")
    log.write_text("".join(f"WARNING {now} views 1 2 Application approval failed\n" for _ in range(2)))
    before = time.time()
    assert cli.main(["--config", str(config), "errors"]) == 0
    found = samples(prom / "peerquest_errors.prom")
    assert set(found) == {
        names.MONITOR_LAST_RUN,
        names.MONITOR_LAST_SUCCESS,
        names.MONITOR_DURATION,
        names.MONITOR_EXIT_CODE,
        names.PATTERN_MATCHES,
        names.PATTERN_THRESHOLD,
    }
    job = '{monitor="errors"}'
    finished = found[names.MONITOR_LAST_RUN][job]
    assert before - 0.001 <= finished == found[names.MONITOR_LAST_SUCCESS][job] <= time.time() + 0.001
    assert found[names.MONITOR_EXIT_CODE][job] == 0 and 0 <= found[names.MONITOR_DURATION][job] < 5
    assert found[names.PATTERN_MATCHES] == {'{pattern="approval_failed"}': 2, '{pattern="rollback"}': 0}
    assert found[names.PATTERN_THRESHOLD] == {'{pattern="approval_failed"}': 3, '{pattern="rollback"}': 0}


def test_the_quick_health_job_is_named_as_scheduled(tmp_path, prom, monkeypatch):
    config, _ = config_file(tmp_path, prom)
    monkeypatch.setitem(cli.COMMANDS, "health", lambda m, a: None)
    assert cli.main(["--config", str(config), "--quick", "health"]) == 0
    assert '{monitor="health_quick"}' in samples(prom / "peerquest_health_quick.prom")[names.MONITOR_EXIT_CODE]


def test_a_failing_run_keeps_the_last_success_and_says_exit_1(tmp_path, prom, monkeypatch):
    config, _ = config_file(tmp_path, prom)
    assert cli.main(["--config", str(config), "errors"]) == 0
    succeeded = samples(prom / "peerquest_errors.prom")[names.MONITOR_LAST_SUCCESS]['{monitor="errors"}']

    def broken(monitor, args):
        raise RuntimeError("state directory gone")

    monkeypatch.setitem(cli.COMMANDS, "errors", broken)
    time.sleep(0.01)
    with pytest.raises(RuntimeError):
        cli.main(["--config", str(config), "errors"])
    found = samples(prom / "peerquest_errors.prom")
    assert found[names.MONITOR_EXIT_CODE]['{monitor="errors"}'] == 1
    assert found[names.MONITOR_LAST_SUCCESS]['{monitor="errors"}'] == succeeded
    assert found[names.MONITOR_LAST_RUN]['{monitor="errors"}'] > succeeded
    # No earlier success at all: the sample is left out rather than made up.
    monkeypatch.setitem(cli.COMMANDS, "digest", broken)
    with pytest.raises(RuntimeError):
        cli.main(["--config", str(config), "digest"])
    assert names.MONITOR_LAST_SUCCESS not in samples(prom / "peerquest_digest.prom")


def test_the_self_check_s_verdict_is_its_exit_code(tmp_path, prom, monkeypatch):
    config, _ = config_file(tmp_path, prom)
    monkeypatch.setitem(cli.COMMANDS, "selfcheck", lambda m, a: ["follower not active"])
    assert cli.main(["--config", str(config), "selfcheck"]) == 1
    assert samples(prom / "peerquest_selfcheck.prom")[names.MONITOR_EXIT_CODE] == {'{monitor="selfcheck"}': 1}


@pytest.mark.parametrize("broken", ["missing", "not a directory", "empty"])
def test_a_missing_or_unwritable_dir_never_stops_a_monitor(tmp_path, capsys, broken):
    target = {"missing": tmp_path / "nowhere", "not a directory": tmp_path / "file", "empty": ""}[broken]
    if broken == "not a directory":
        target.write_text("")
    config, _ = config_file(tmp_path, target)
    assert cli.main(["--config", str(config), "errors"]) == 0
    assert cli.main(["--config", str(config), "performance"]) == 0
    out = capsys.readouterr().out
    # Said once per process, whatever the number of files it could not write.
    assert out.count("cannot write") == (0 if broken == "empty" else 1), out
    assert "errors:" in out and "performance:" in out


def test_check_config_refuses_a_relative_textfile_dir(tmp_path, capsys):
    config, _ = config_file(tmp_path, "relative/dir")
    assert cli.main(["--config", str(config), "check-config"]) == 2
    assert "metrics.textfile_dir" in capsys.readouterr().err


# ------------------------------------------------------------ job figures


@pytest.fixture
def monitor(tmp_path, prom):
    m, log, calls = scratch_monitor(tmp_path, lambda log: {"metrics": {"textfile_dir": str(prom)}})
    return m, log


def test_slow_operations_in_the_window(monitor, prom):
    m, log = monitor
    now = time.strftime("%Y-%m-%d %H:%M:%S,000")
    log.write_text(f"INFO {now} views 1 2 GET /q/ took 6.5s\nINFO {now} views 1 2 GET /q/ took 0.5s\n")
    m.config["performance"] = {
        "log_file": str(log), "window_seconds": 3600, "slow_seconds": 5, "slow_threshold": 10,
        "duration_regex": r"(?P<op>GET /\S*) took (?P<value>[\d.]+)(?P<unit>s)", "slow_severity": "WARNING",
        "degradation_percent": 200, "degradation_severity": "WARNING", "min_samples": 3,
    }  # fmt: skip
    performance.run_performance(m)
    runs.record(m, "performance", time.time(), 0)
    assert samples(prom / "peerquest_performance.prom")[names.SLOW_OPERATIONS] == {"": 1}


def audit(tmp_path, body):
    script = tmp_path / "audit"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return [str(script)]


def test_integrity_figures_and_a_failed_audit_keeps_the_last(monitor, tmp_path, prom):
    m, _ = monitor
    m.config["integrity"] = {"command": audit(tmp_path, "echo 'TOTAL ISSUES: 2'; exit 1"), "timeout": 5,
                             "result_file": str(tmp_path / "result.json"), "severity": "CRITICAL"}  # fmt: skip
    before = time.time()
    integrity.run_integrity(m)
    runs.record(m, "integrity", before, 0)
    first = samples(prom / "peerquest_integrity.prom")
    assert first[names.INTEGRITY_ISSUES] == {"": 2}
    assert before - 0.001 <= first[names.INTEGRITY_LAST_AUDIT][""] <= time.time() + 0.001
    # The audit itself fails: no new audit time, the last issues stay.
    m.figures = []
    m.config["integrity"]["command"] = audit(tmp_path, "echo 'database is locked' >&2; exit 1")
    integrity.run_integrity(m)
    runs.record(m, "integrity", time.time(), 0)
    second = samples(prom / "peerquest_integrity.prom")
    assert second[names.INTEGRITY_ISSUES] == {"": 2}
    assert second[names.INTEGRITY_LAST_AUDIT] == first[names.INTEGRITY_LAST_AUDIT]


# ----------------------------------------------------- the follower's figures


def test_the_follower_beats_at_most_every_interval_and_within_30_seconds(monitor, tmp_path, prom):
    m, _ = monitor
    critical = tmp_path / "critical.log"
    critical.write_text("")
    pattern = {"name": "critical", "regex": "^CRITICAL "}
    m.config["follow"] = {"enabled": True, "log_file": str(critical), "poll_seconds": 0, "takeover_seconds": 120,
                          "severity": "CRITICAL", "patterns": [pattern]}  # fmt: skip
    follow.run_follow(m, iterations=1)
    path = prom / "peerquest_follow.prom"
    first = samples(path)[names.FOLLOWER_HEARTBEAT][""]
    assert abs(first - time.time()) < 5
    assert live.INTERVAL <= 30
    assert not live.heartbeat(m, now=first + live.INTERVAL - 1)
    later = first + live.INTERVAL + 0.01  # the file's time is rounded to milliseconds
    assert live.heartbeat(m, now=later)
    assert samples(path)[names.FOLLOWER_HEARTBEAT][""] == pytest.approx(later, abs=0.002)


def test_database_failures_in_the_window(monitor, tmp_path, prom):
    m, _ = monitor
    db_log = tmp_path / "warnings.log"
    db_log.write_text("")
    m.config["database"] = {"log_file": str(db_log), "regex": "OperationalError", "threshold": 5,
                            "window_seconds": 120, "severity": "CRITICAL"}  # fmt: skip
    dbwatch.db_pass(m)
    path = prom / "peerquest_database.prom"
    assert samples(path)[names.DATABASE_ERRORS] == {"": 0}
    now = time.strftime("%Y-%m-%d %H:%M:%S,000")
    db_log.write_text(f"ERROR {now} db 1 2 OperationalError: no such table\nERROR {now} db 1 2 OperationalError\n")
    dbwatch.db_pass(m)  # a changed count is written at once, not after the interval
    assert samples(path)[names.DATABASE_ERRORS] == {"": 2}
