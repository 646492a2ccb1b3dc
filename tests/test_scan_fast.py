"""The scanner over bytes gives the answer of line-by-line reading; a first run starts at its window by time;
a run over its CPU budget samples, keeps every CRITICAL line and says so."""

import json
import random
import re
import time
from pathlib import Path

import pytest
from peerquest_ops.monitors import chunks, errors, follow, scan, timeseek
from peerquest_ops.monitors.rules import Rule
from peerquest_ops.monitors.sampling import Budget
from peerquest_ops.monitors.windows import add_event, window_count

NOW = time.mktime(time.strptime("2026-11-28 14:00:00", "%Y-%m-%d %H:%M:%S"))

# The default rules (roles/peerquest_monitors/defaults) and rules that exercise each strategy.
RULES = {
    "critical": r"^(?!CRITICAL ).*CRITICAL:",
    "approval_failed": "Application approval failed",
    "approved": "Application approved",
    "error_rate": "^(ERROR|CRITICAL) ",
    "follow": "^CRITICAL ",
    "ends": r"failed$",
    "unicode": "Zürich",
    "word": r"\bquest \d+\b",
    "nocase": "(?i)TIMEOUT",
    "dotted": "a.b",
    "class": r"user [0-9]+ gone",
    "any": r"fee .{4}x",
}


def stamp(when, zone=""):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) + f",{random.randrange(1000):03d}" + zone


def text(level, when, message, zone=""):
    return f"{level} {stamp(when, zone)} views 4242 140 {message}"


def json_line(level, when, message):
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when)), "level": level}
    return json.dumps(record | {"logger": "quests", "message": message})


MESSAGES = [
    "Application approved for quest 12",
    "Application approval failed for quest 12",
    "CRITICAL: payment ledger out of sync",
    "Quest assigned to user 7",
    "request to Zürich timed out",
    "TimeOut while talking to the bank",
    "axb and a-b",
    "user 42 gone",
    "approval failed",
    "quest 77 archived",
    "xxxxxx",
    "ends with x",
    "fee ü€€€x",
]


def random_log(seed, count=3000):
    """Lines of both formats, tracebacks, zones, odd seconds, non-ASCII and broken UTF-8, in time order."""
    rng = random.Random(seed)
    random.seed(seed)
    out = []
    when = NOW - 2 * 3600
    for _ in range(count):
        when += rng.random() * 5
        level = rng.choice(["INFO", "INFO", "WARNING", "ERROR", "CRITICAL"])
        message = rng.choice(MESSAGES)
        kind = rng.random()
        if kind < 0.1:
            out.append(json_line(level, when, message).encode())
        elif kind < 0.15:
            out.append(b"Traceback (most recent call last):")
            out.append(f"  ValueError: {message}".encode())
        elif kind < 0.2:
            out.append(text(level, when, message, rng.choice(["+1300", "-06:00", "Z"])).encode())
        elif kind < 0.21:
            out.append(text(level, when, message).replace(":", ":6", 2).encode())  # no valid time
        elif kind < 0.22:
            line = text(level, when, message)
            out.append((line[: len(level) + 18] + "60" + line[len(level) + 20 :]).encode())  # a leap second
        elif kind < 0.24:
            out.append(text(level, when, message).encode() + b" \xff\xfe broken")
        else:
            out.append(text(level, when, message).encode())
    return b"\n".join(out) + b"\n"


def reference(data, rules, now):
    """What the line-by-line reading counts: every line decoded and searched (chunks.count_line)."""
    buckets = {name: {} for name in rules}
    for line in data.decode("utf-8", "replace").splitlines():
        chunks.count_line(line, rules, lambda name, when, n: add_event(buckets[name], when, n), now)
    return buckets


def fast(data, rules, now):
    buckets = {name: {} for name in rules}
    chunks.count_chunk(data, rules, lambda name, when, n: add_event(buckets[name], when, n), now)
    return buckets


def compiled():
    return {name: Rule(name, re.compile(regex)) for name, regex in RULES.items()}


@pytest.mark.parametrize("seed", range(6))
def test_counts_over_bytes_equal_line_by_line_reading(seed):
    rules = compiled()
    data = random_log(seed)
    assert fast(data, rules, NOW) == reference(data, rules, NOW)


def test_each_strategy_is_used_and_matches():
    rules = compiled()
    assert rules["approval_failed"].counter is not None  # a literal first: counted by the engine
    assert rules["error_rate"].counter is not None  # ^ anchored: searched from newline to newline
    assert rules["critical"].counter is None and rules["critical"].finder.pattern == b"CRITICAL:"
    assert rules["word"].counter is None and rules["word"].finder is not None  # \b, \d are Unicode in text
    assert rules["nocase"].counter is None and rules["nocase"].finder is None  # read line by line
    assert rules["unicode"].counter is None and rules["unicode"].finder.pattern == "Zürich".encode()


def test_a_match_never_spans_two_lines():
    rules = {name: Rule(name, re.compile(regex)) for name, regex in {"a": "approval failed$", "b": "^x.*y"}.items()}
    data = f"{text('INFO', NOW, 'approval')}\nfailed now\nx\ny\n".encode()
    counted = fast(data, rules, NOW)
    assert counted == reference(data, rules, NOW) == {"a": {}, "b": {}}


@pytest.mark.parametrize("mark", ["\r", "\x0b", "\x1c", "\x85", "\u2028", "\u2029"])
def test_a_line_break_other_than_newline_is_read_as_splitlines_reads_it(mark):
    rules = compiled()
    line = text("ERROR", NOW, "Application approval failed")
    data = f"{line}{mark}\n{text('INFO', NOW, 'x')}{mark}CRITICAL y\n{line[:30]}{mark}failed\n".encode()
    assert fast(data, rules, NOW) == reference(data, rules, NOW)
    assert chunks.has_odd_breaks(data) and not chunks.has_odd_breaks(line.encode() + "Zürich €".encode())


def test_scan_of_a_file_equals_the_reference_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "CHUNK", 4096)
    monkeypatch.setattr(scan.read_new_chunk, "__defaults__", (4096,))
    data = random_log(7, 2000)
    log = tmp_path / "django.log"
    log.write_bytes(data)
    state = scan.empty_state()
    total = scan.scan(state, str(log), {n: re.compile(r) for n, r in RULES.items()}, NOW, 86400)
    assert total == data.count(b"\n")
    assert state["buckets"] == reference(data, compiled(), NOW)
    assert state["position"]["offset"] == len(data)


# ------------------------------------------------------------------ first run


def timed_log(path, old_lines, recent_lines, old_junk=False):
    """old_lines three hours old (or lines no reader could count), then recent_lines in the last 50 minutes."""
    with open(path, "wb") as handle:
        for i in range(old_lines):
            if old_junk:
                handle.write(b"\x00" * 80 + b"\n")
            else:
                handle.write(text("ERROR", NOW - 3 * 3600 + i * 0.01, "Application approval failed").encode() + b"\n")
        for i in range(recent_lines):
            when = NOW - 3000 + i * 3000 / recent_lines
            message = MESSAGES[i % len(MESSAGES)]
            line = json_line("ERROR", when, message) if i % 10 == 0 else text("ERROR", when, message)
            handle.write(line.encode() + b"\n")


@pytest.mark.parametrize("junk", [False, True])
def test_a_first_run_starts_at_the_window_found_by_time(tmp_path, junk):
    log = tmp_path / "django.log"
    timed_log(log, 20000, 500, old_junk=junk)
    rules = {n: re.compile(r) for n, r in RULES.items()}
    full, seek = scan.empty_state(), scan.empty_state()
    scan.scan(full, str(log), rules, NOW, 86400)
    read = scan.scan(seek, str(log), rules, NOW, 86400, since=NOW - 3600)
    assert read == 500  # the old part was skipped, not read
    for name in rules:
        assert window_count(seek["buckets"][name], NOW, 3600) == window_count(full["buckets"][name], NOW, 3600)
    assert seek["position"] == full["position"]


def test_the_window_start_is_the_first_line_at_or_after_since(tmp_path):
    log = tmp_path / "django.log"
    lines = [text("INFO", NOW - 7200 + i, "x").encode() for i in range(7200)]
    log.write_bytes(b"\n".join(lines) + b"\n")
    offset = timeseek.offset_at(str(log), NOW - 3600)
    assert log.read_bytes()[offset:].split(b"\n", 1)[0] == lines[3600]
    assert timeseek.offset_at(str(log), NOW + 60) == log.stat().st_size  # nothing in the window
    assert timeseek.offset_at(str(log), 0) == 0


# ------------------------------------------------------------------ sampling


def busy_log(path, count=60000, criticals=37, level="CRITICAL"):
    """A busy backlog with a few "CRITICAL:" records (of level) spread through it."""
    step = count // criticals
    with open(path, "wb") as handle:
        for i in range(count):
            when = NOW - 600 + i * 590 / count
            if i % step == 3 and i // step < criticals:
                line = text(level, when, f"CRITICAL: ledger {i} gone")
            else:
                line = text("INFO", when, MESSAGES[(0, 1, 3, 6)[i % 4]])
            handle.write(line.encode() + b"\n")


def run_with_budget(tmp_path, budget_ms):
    log = tmp_path / "django.log"
    if not log.exists():
        busy_log(log)
    state = scan.empty_state()
    follow = {"follow": Rule("follow", re.compile("^CRITICAL "))}
    budget = Budget("errors", budget_ms, follow, scan.backlog(str(log), {}))
    rules = {n: re.compile(r) for n, r in RULES.items()}
    scan.scan(state, str(log), rules, NOW, 86400, budget=budget)
    return state, budget


def total(state, name):
    return sum(state["buckets"][name].values())


def test_over_budget_every_critical_line_is_counted_and_the_rest_sampled(tmp_path, capsys):
    state, budget = run_with_budget(tmp_path, 0)
    assert budget.fraction is not None and budget.fraction < 0.5
    assert total(state, "follow") == 37  # every CRITICAL line, none sampled away
    full, _ = run_with_budget(tmp_path, 60_000)
    assert total(full, "follow") == 37
    # The rest is an estimate, scaled: within 10 % of the full count, not the sample's own count.
    assert abs(total(state, "approved") - total(full, "approved")) < 0.1 * total(full, "approved")
    [line] = [x for x in capsys.readouterr().out.splitlines() if "CPU budget" in x]
    assert "WARNING errors: backlog of" in line and "sampled" in line and "37 lines matching" in line


def test_the_budget_decides(tmp_path, capsys):
    _, tight = run_with_budget(tmp_path, 0)
    _, loose = run_with_budget(tmp_path, 60_000)
    assert tight.fraction is not None and loose.fraction is None
    assert capsys.readouterr().out.count("CPU budget") == 1  # said once, by the run that sampled


# ------------------------------------------------------------ the follower in a storm


@pytest.fixture
def storm_follower(tmp_path):
    from conftest import enable_follower, scratch_monitor

    m, _log, calls = scratch_monitor(tmp_path, lambda log: {})
    critical = enable_follower(m, tmp_path)
    follow.follow_pass(m)  # starts at the end
    return m, critical, calls


def critical_lines(path, count, message="Payment ledger write failed"):
    with open(path, "a", encoding="utf-8") as handle:
        for i in range(count):
            handle.write(text("CRITICAL", time.time(), message if i % 50 else "Disk full on /srv") + "\n")


def test_a_storm_runs_one_alert_command_per_key_and_window_and_the_next_one_says_how_many(storm_follower, capsys):
    m, critical, calls = storm_follower
    m.config["follow"]["hold_seconds"] = 3600
    critical_lines(critical, 500)
    follow.follow_pass(m)
    sent = [c["argv"][c["argv"].index("--key") + 1] for c in calls()]
    assert sorted(sent) == [
        "app1:follow:critical:Disk full on /srv",
        "app1:follow:critical:Payment ledger write failed",
    ]
    assert "489 repeats of follow:critical:Payment ledger write failed held back" in capsys.readouterr().out
    # The window is over: the next line of the kind goes out and says how many were held back.
    state = json.loads((Path(m.state_dir) / "follow.json").read_text())
    for record in state["held"].values():
        record["sent"] -= 3600
    (Path(m.state_dir) / "follow.json").write_text(json.dumps(state))
    critical_lines(critical, 2)
    follow.follow_pass(m)
    after = {c["argv"][3]: c["stdin"] for c in calls()[2:]}
    assert "(489 more like it since" in after["app1:follow:critical:Payment ledger write failed"]
    assert "(9 more like it since" in after["app1:follow:critical:Disk full on /srv"]
    assert len(calls()) == 4


def test_without_a_hold_every_line_is_alerted(storm_follower):
    m, critical, calls = storm_follower
    m.config["follow"]["hold_seconds"] = 0
    critical_lines(critical, 20)
    follow.follow_pass(m)
    assert len(calls()) == 20


def test_over_budget_the_errors_job_loses_no_critical_line(tmp_path, capsys):
    """End to end: the errors job with a budget of 0 ms samples, and every CRITICAL: line still alerts."""
    from conftest import ERROR_RATE, scratch_monitor

    patterns = [
        {
            "name": "critical",
            "label": "CRITICAL:",
            "regex": "^(?!CRITICAL ).*CRITICAL:",
            "severity": "CRITICAL",
            "threshold": 36,
        }
    ]
    m, log, calls = scratch_monitor(
        tmp_path,
        lambda log: {
            "errors": {
                "log_file": log,
                "window_seconds": 3600,
                "patterns": patterns,
                "rates": [],
                "error_rate": ERROR_RATE,
            },
            "follow": {"enabled": False, "patterns": [{"name": "critical", "regex": "CRITICAL:"}]},
        },
    )
    busy_log(log, level="ERROR")
    for budget_ms, sampled in ((0, True), (60_000, False)):
        m.config["cpu_budget_ms"] = budget_ms
        (Path(m.state_dir) / "errors.json").unlink(missing_ok=True)
        capsys.readouterr()
        errors.run_errors(m, now=NOW)
        assert ("CPU budget" in capsys.readouterr().out) is sampled
        # 37 CRITICAL: lines against a threshold of 36: not one may be sampled away.
        counted = json.loads((Path(m.state_dir) / "errors.json").read_text())["buckets"]["critical"]
        assert sum(counted.values()) == 37, budget_ms  # exact, not an estimate scaled from a sample
        fired = [c for c in calls() if "app1:errors:critical" in c["argv"]]
        assert len(fired) == (1 if sampled else 2), budget_ms


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"cpu_budget_ms": -5}, "cpu_budget_ms: must be a whole number of milliseconds >= 0"),
        ({"cpu_budget_ms": "fast"}, "cpu_budget_ms: must be a whole number of milliseconds >= 0"),
        ({"follow": {"patterns": [], "hold_seconds": -1}}, "follow.hold_seconds: must be a number of seconds >= 0"),
    ],
)
def test_check_config_names_a_bad_budget_or_hold(change, problem):
    from peerquest_ops.monitors.schema import config_problems

    sections = ("state_dir", "alert_command", "errors", "performance", "health", "integrity", "selfcheck", "follow")
    config = {key: {} for key in sections} | {"state_dir": "/x", "alert_command": "/bin/true"}
    config["errors"] = {"patterns": [], "rates": [], "error_rate": {"regex": "x"}}
    config["performance"] = {"duration_regex": "(?P<value>1)(?P<unit>s)"}
    config["follow"] = {"patterns": []}
    assert problem not in config_problems(config)
    assert problem in config_problems(config | change)


def test_a_failed_alert_is_not_held_back(storm_follower, tmp_path):
    """An alert command that delivered nothing and queued nothing: the next line of the kind tries again."""
    m, critical, calls = storm_follower
    m.config["follow"]["hold_seconds"] = 3600
    failing = tmp_path / "failing-alert"
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o755)
    m.config["alert_command"] = str(failing)
    critical_lines(critical, 3)
    follow.follow_pass(m)
    assert json.loads((Path(m.state_dir) / "follow.json").read_text()).get("held", {}) == {}
