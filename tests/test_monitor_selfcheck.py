"""peerquest-monitor's self-check names each broken thing; the follower resumes exactly where it stopped."""

import json
import os
import shutil
import time

import pytest
from conftest import fake_alert_command
from peerquest_ops.monitors import base, cli, follow, selfcheck

FOLLOWER_UNIT = "peerquest-monitor-follow.service"
DURATION = r"took (?P<value>\d+)(?P<unit>ms|s)"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A monitor whose every self-check finding is fine: fresh runs, a beating follower, room on disk."""
    state = tmp_path / "state"
    state.mkdir()
    alert, sent = fake_alert_command(tmp_path)
    spool = tmp_path / "spool"
    spool.mkdir()
    critical = tmp_path / "critical.log"
    critical.write_text("")
    config = {
        "host": "app1",
        "state_dir": str(state),
        "alert_command": str(alert),
        "digest": {"enabled": False},
        # Only what check-config reads: the self-check uses none of it.
        "errors": {"patterns": [], "rates": [], "error_rate": {"regex": "^ERROR "}},
        "performance": {"slow_regex": "slow", "db_error_regex": "database", "duration_regex": DURATION},
        "health": {},
        "integrity": {},
        "follow": {
            "enabled": True,
            "unit": FOLLOWER_UNIT,
            "log_file": str(critical),
            "patterns": [{"name": "critical", "regex": "^CRITICAL "}],
            "takeover_seconds": 120,
            "poll_seconds": 0,
            "severity": "CRITICAL",
        },
        "selfcheck": {
            "max_age_seconds": {"errors": 720, "digest": 172920},
            "writable": [str(state), str(spool)],
            "readable": [str(critical)],
            "disk_paths": [str(state)],
            "min_free_disk_mb": 1,
            "test_channels": False,
        },
    }
    units = {FOLLOWER_UNIT: "active"}
    monkeypatch.setattr(selfcheck, "unit_state", lambda unit: units.get(unit, "inactive"))
    m = base.Monitor(config)
    now = time.time()
    (state / "last_run.json").write_text(json.dumps({"errors": now - 60, "digest": now - 3600}))
    (state / "follow.heartbeat").write_text("")

    def calls():
        return [json.loads(x) for x in sent.read_text().splitlines()] if sent.exists() else []

    config_file = tmp_path / "monitors.json"

    def main(*args, deployed_ago=0):
        config_file.write_text(json.dumps(config))
        os.utime(config_file, (time.time() - deployed_ago, time.time() - deployed_ago))
        return cli.main(["--config", str(config_file), *args])

    return m, units, calls, main


def warnings(calls):
    return [c for c in calls() if c["argv"][:2] == ["--severity", "WARNING"]]


def test_a_clean_selfcheck_says_so_and_exits_0(setup, capsys):
    m, _, calls, main = setup
    assert main("selfcheck") == 0
    out = capsys.readouterr().out
    assert "selfcheck: 0 problem(s)" in out and "PROBLEM" not in out
    [call] = calls()
    assert call["argv"][:2] == ["--severity", "INFO"] and "self-check passed" in call["stdin"]


def break_stale(m, units):
    runs = json.loads(open(m.state_path("last_run"), encoding="utf-8").read())
    runs["errors"] = time.time() - 3 * 3600
    with open(m.state_path("last_run"), "w", encoding="utf-8") as handle:
        json.dump(runs, handle)
    return "errors last ran 180 minutes ago (allowed 12)"


def break_follower(m, units):
    units[FOLLOWER_UNIT] = "inactive"
    return f"the CRITICAL follower is not running: {FOLLOWER_UNIT} is inactive"


def break_writable(m, units):
    gone = m.config["selfcheck"]["writable"][1]
    shutil.rmtree(gone)  # tests may run as root, who may write anywhere: a missing directory is not writable either
    return f"{gone} is not writable by the monitors"


def break_disk(m, units):
    free = shutil.disk_usage(m.state_dir).free // (1024 * 1024)
    m.config["selfcheck"]["min_free_disk_mb"] = free + 1024 * 1024
    return f"MiB free under {m.state_dir} (minimum {free + 1024 * 1024})"


BREAKS = {"stale job": break_stale, "follower": break_follower, "unwritable": break_writable, "disk": break_disk}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_each_broken_thing_is_named_in_the_output_the_exit_status_and_the_alert(setup, capsys, name):
    m, units, calls, main = setup
    expected = BREAKS[name](m, units)
    assert main("selfcheck") == 1
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if "selfcheck: PROBLEM " in line]
    assert len(problems) == 1 and expected in problems[0], out
    assert "selfcheck: 1 problem(s)" in out
    [call] = warnings(calls)
    assert expected in call["stdin"]


def test_all_at_once_each_is_named(setup, capsys):
    m, units, calls, main = setup
    expected = [fn(m, units) for fn in BREAKS.values()]
    assert main("selfcheck") == 1
    out = capsys.readouterr().out
    [call] = warnings(calls)
    for text in expected:
        assert text in out and text in call["stdin"], text
    assert "selfcheck: 4 problem(s)" in out


def test_a_job_that_never_ran_is_overdue_only_once_its_silence_since_the_deploy_is_too_long(setup, capsys):
    m, _, _, main = setup
    runs = json.loads(open(m.state_path("last_run"), encoding="utf-8").read())
    del runs["digest"]  # allowed 2882 minutes
    with open(m.state_path("last_run"), "w", encoding="utf-8") as handle:
        json.dump(runs, handle)
    assert main("selfcheck", deployed_ago=3600) == 0  # deployed an hour ago: not due yet
    assert main("selfcheck", deployed_ago=3 * 86400) == 1
    assert "PROBLEM digest has never run (deployed 4320 minutes ago, allowed 2882)" in capsys.readouterr().out


def test_a_follower_unit_running_but_silent_is_named(setup):
    m, _, _, _ = setup
    beat = os.path.join(m.state_dir, "follow.heartbeat")
    os.utime(beat, (time.time() - 600, time.time() - 600))
    [problem] = selfcheck.run_selfcheck(m)
    assert problem.startswith("the CRITICAL follower is not running: silent for 6") and "(allowed 120s)" in problem


def test_systemd_out_of_reach_falls_back_to_the_heartbeat(setup, monkeypatch):
    m, _, _, _ = setup
    monkeypatch.setattr(selfcheck, "unit_state", lambda unit: None)
    assert selfcheck.run_selfcheck(m) == []
    os.unlink(os.path.join(m.state_dir, "follow.heartbeat"))
    assert selfcheck.run_selfcheck(m) == ["the CRITICAL follower is not running: it never wrote a heartbeat"]


def test_a_new_problem_is_told_at_once_the_same_ones_share_a_key(setup):
    m, units, calls, _ = setup
    break_follower(m, units)
    selfcheck.run_selfcheck(m)
    selfcheck.run_selfcheck(m)
    break_stale(m, units)
    selfcheck.run_selfcheck(m)
    found = [c["argv"][c["argv"].index("--key") + 1] for c in warnings(calls)]
    assert found == ["app1:selfcheck:follower", "app1:selfcheck:follower", "app1:selfcheck:stale:errors,follower"]


def test_an_unwritable_state_directory_is_reported_not_a_crash(setup, monkeypatch, capsys):
    m, _, calls, _ = setup

    def refuse(name):
        raise PermissionError(13, "Permission denied", m.state_path("last_run"))

    monkeypatch.setattr(m, "mark_run", refuse)
    monkeypatch.setattr(selfcheck.os, "access", lambda path, mode: path != m.state_dir)
    assert selfcheck.run_selfcheck(m) == [f"{m.state_dir} is not writable by the monitors"]
    assert "could not record this run: Permission denied" in capsys.readouterr().out
    assert len(warnings(calls)) == 1


# -------------------------------------------------- follower: stop and resume


def critical_lines(path, *tags):
    with open(path, "a", encoding="utf-8") as handle:
        for tag in tags:
            handle.write(f"CRITICAL 2026-11-28 06:00:00,000+0000 quests 1 2 store gone {tag}\n")
            handle.write("Traceback (most recent call last):\n")


def alerted_tags(calls):
    return [c["stdin"].split("store gone ")[1].split()[0] for c in calls()]


@pytest.fixture
def follower(setup):
    m, _, calls, _ = setup
    follow._STOP["requested"] = False
    follow.run_follow(m, iterations=1)  # the cursor at the end of the (empty) log
    yield m, m.config["follow"]["log_file"], calls
    follow._STOP["requested"] = False


def test_a_stop_between_two_alerts_resumes_with_the_next_line(follower, monkeypatch):
    m, log, calls = follower
    critical_lines(log, "t1", "t2", "t3", "t4")
    real = base.Monitor.alert

    def alert_then_stop(self, *args, **kwargs):
        status = real(self, *args, **kwargs)
        if len(calls()) == 2:
            follow.request_stop()  # SIGTERM arrives while the second alert is out
        return status

    monkeypatch.setattr(base.Monitor, "alert", alert_then_stop)
    follow.run_follow(m)  # returns on the stop request
    assert alerted_tags(calls) == ["t1", "t2"]
    assert json.loads(open(m.state_path("follow"), encoding="utf-8").read())["done"] == 3  # t2's traceback pending
    follow._STOP["requested"] = False
    monkeypatch.setattr(base.Monitor, "alert", real)
    critical_lines(log, "t5")
    follow.run_follow(m, iterations=1)
    assert alerted_tags(calls) == ["t1", "t2", "t3", "t4", "t5"]


def test_a_kill_during_an_alert_repeats_at_most_that_one(follower, monkeypatch):
    m, log, calls = follower
    critical_lines(log, "k1", "k2", "k3")
    real = base.Monitor.alert

    def killed_on_the_second(self, *args, **kwargs):
        if len(calls()) == 1:
            raise SystemExit("killed")  # SIGKILL: nothing after this point runs
        return real(self, *args, **kwargs)

    monkeypatch.setattr(base.Monitor, "alert", killed_on_the_second)
    with pytest.raises(SystemExit):
        follow.run_follow(m, iterations=1)
    monkeypatch.setattr(base.Monitor, "alert", real)
    follow.run_follow(m, iterations=1)
    assert alerted_tags(calls) == ["k1", "k2", "k3"]


def test_truncation_restarts_the_count(follower):
    m, log, calls = follower
    critical_lines(log, "a1", "a2")
    follow.run_follow(m, iterations=1)
    with open(m.state_path("follow"), "w", encoding="utf-8") as handle:
        # A cursor left mid-chunk; then the file is cut and rewritten shorter.
        json.dump({"position": {"inode": os.stat(log).st_ino, "offset": 400}, "done": 1}, handle)
    with open(log, "w", encoding="utf-8"):
        pass
    critical_lines(log, "b1")
    follow.run_follow(m, iterations=1)
    assert alerted_tags(calls) == ["a1", "a2", "b1"]


def test_a_follower_stopped_on_request_is_taken_over_by_the_next_scan(follower):
    """A clean stop does not leave the scans waiting out takeover_seconds: the next scan alerts the line."""
    m, log, calls = follower
    assert follow.follower_alive(m)
    follow.request_stop()
    follow.run_follow(m)  # returns at once, as on SIGTERM
    follow._STOP["requested"] = False
    assert not follow.follower_alive(m)
    assert selfcheck.follower_problem(m, time.time()) == "the CRITICAL follower is not running: it was stopped"
    critical_lines(log, "s1")
    assert follow.stand_in_for_follower(m) is not None  # it read the follower's lines
    assert alerted_tags(calls) == ["s1"]
    follow.run_follow(m, iterations=1)  # back: it beats again and repeats nothing
    assert follow.follower_alive(m) and alerted_tags(calls) == ["s1"]
