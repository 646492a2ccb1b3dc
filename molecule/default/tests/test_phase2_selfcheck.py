"""The weekly self-check on a real host: it names each broken thing, and is clean once all is mended.

Each test breaks one thing the self-check watches (a job's last run too old,
the follower's unit stopped, a directory it writes made unwritable, free space
below the threshold), runs the deployed command, and checks its verdict three
ways: its exit status, its output (one "PROBLEM" line each) and the WARNING it
sends. Every value comes from the deployed variables and the settings the role
rendered, so the same tests hold in custom_site.
"""

import contextlib
import json
import os
import re
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    V,
    cron_paused,
    delivered,
    delivered_text,
    direct_delivery,
    forget_dedup,
    host,
    monitor_cmd,
    monitor_user,
    monitors_config,
    reset_sink,
    routes,
    subject,
    wait_for,
)

APP = host("app")
VARS = V("app")
MONITOR = monitor_cmd()
AS_MONITOR = f"sudo -u {shlex.quote(monitor_user())}"
STATE_DIR = VARS["peerquest_monitors_state_dir"]
LAST_RUN = f"{STATE_DIR}/last_run.json"
PROBLEM = re.compile(r" peerquest-monitor selfcheck: PROBLEM (.*)$")
FOUND = "Monitoring self-check found problems"


@pytest.fixture(scope="module", autouse=True)
def settled():
    """Cron paused; every job the self-check watches recorded as just run; no dedup memory.

    The jobs' real runs are test_phase2_jobs' business: here only their
    last-run state matters, and it is put back as it was afterwards.
    """
    with cron_paused():
        before = APP.run(f"cat {shlex.quote(LAST_RUN)}")
        forget_dedup()
        set_last_runs({job: 0 for job in watched_jobs()})
        yield
        if before.rc == 0:
            write_as_monitor(LAST_RUN, before.stdout)
        else:
            APP.check_output(f"rm -f {shlex.quote(LAST_RUN)}")


def watched_jobs():
    """{job: seconds it may stay silent}, as the self-check on this host reads them."""
    return monitors_config()["selfcheck"]["max_age_seconds"]


def write_as_monitor(path, text):
    """Replace a state file as the monitoring account, so owner and mode stay the account's."""
    code = f"import sys; open({path!r}, 'w').write(sys.stdin.read())"
    APP.check_output(f"printf %s {shlex.quote(text)} | {AS_MONITOR} python3 -c {shlex.quote(code)}")


def set_last_runs(ages):
    """Record each job's last run as that many seconds ago (the host's clock)."""
    code = (
        "import json, sys, time; path = sys.argv[1]; ages = json.loads(sys.argv[2])\n"
        "try:\n    runs = json.load(open(path))\nexcept FileNotFoundError:\n    runs = {}\n"
        "runs.update({job: time.time() - age for job, age in ages.items()})\n"
        "json.dump(runs, open(path, 'w'))"
    )
    APP.check_output(
        f"{AS_MONITOR} python3 -c {shlex.quote(code)} {shlex.quote(LAST_RUN)} {shlex.quote(json.dumps(ages))}"
    )


def selfcheck(*args):
    """Run the deployed self-check: (exit status, the PROBLEM lines it printed, all it printed)."""
    result = APP.run(f"{MONITOR} {' '.join(shlex.quote(a) for a in args)} selfcheck")
    out = result.stdout + result.stderr
    return result.rc, [m.group(1) for m in map(PROBLEM.search, out.splitlines()) if m], out


def warnings_received():
    """The self-check WARNINGs every routed channel received (by its first routed channel's records)."""
    channels = routes("WARNING")
    if not channels:
        pytest.skip("WARNING is routed nowhere in this inventory")
    return {channel: [delivered_text(r) for r in delivered(channel, FOUND)] for channel in channels}


def all_warned():
    """{channel: texts} once every WARNING channel received the self-check's WARNING (None before)."""
    received = warnings_received()
    return received if all(received.values()) else None


def assert_named(expected, *args):
    """The self-check exits 1, prints exactly the expected problem, and every WARNING channel gets it."""
    reset_sink()
    rc, problems, out = selfcheck(*args)
    assert rc == 1, out
    assert len(problems) == 1 and expected in problems[0], out
    assert "selfcheck: 1 problem(s)" in out, out
    received = wait_for(all_warned, what="the self-check WARNING")
    for channel, texts in received.items():
        assert len(texts) == 1 and expected in texts[0], (channel, texts)
    if "email" in received:
        mail = delivered("email", FOUND)[0]
        assert mail["subject"] == subject("WARNING")


def assert_clean(*args):
    rc, problems, out = selfcheck(*args)
    assert (rc, problems) == (0, []), out
    assert "selfcheck: 0 problem(s)" in out, out


# ------------------------------------------------------------------ clean


@direct_delivery
def test_a_healthy_host_passes_and_the_channels_are_tested():
    reset_sink()
    assert_clean()
    assert all(not texts for texts in warnings_received().values())
    channels = VARS["peerquest_alerting_selftest_channels"]
    if channels and VARS["peerquest_monitors_selfcheck_test_channels"]:
        for channel in channels:
            assert delivered(channel, "alert channel test"), channel


# ------------------------------------------------------ each broken thing


def test_a_stale_job_is_named():
    jobs = watched_jobs()
    assert jobs, "the self-check watches no job on this host"
    job = "errors" if "errors" in jobs else sorted(jobs)[0]
    allowed = int(jobs[job])
    # Ten minutes past what it may stay silent.
    set_last_runs({job: allowed + 600})
    try:
        assert_named(f"{job} last ran {(allowed + 600) // 60} minutes ago (allowed {allowed // 60})")
    finally:
        set_last_runs({job: 0})
    assert_clean()


def test_a_stopped_follower_is_named():
    if not VARS["peerquest_monitors_follow_enabled"]:
        pytest.skip("the CRITICAL follower is off in this inventory")
    unit = monitors_config()["follow"]["unit"]
    APP.check_output(f"systemctl stop {shlex.quote(unit)}")
    try:
        assert_named(f"the CRITICAL follower is not running: {unit} is inactive")
    finally:
        APP.check_output(f"systemctl start {shlex.quote(unit)}")
    assert_clean()


def test_an_unwritable_directory_is_named():
    directory = shlex.quote(STATE_DIR)
    assert STATE_DIR in monitors_config()["selfcheck"]["writable"]
    mode = APP.check_output(f"stat -c %a {directory}")
    APP.check_output(f"chmod 0500 {directory}")
    try:
        assert_named(f"{STATE_DIR} is not writable by the monitors")
    finally:
        APP.check_output(f"chmod {mode} {directory}")
    assert_clean()


@contextlib.contextmanager
def settings_with_min_free_disk_above_the_free_space():
    """A copy of the rendered settings, only min_free_disk_mb changed, for the deployed command's --config
    (its last --config wins): (the copy's path, the disk paths, the threshold)."""
    config = monitors_config()
    paths = config["selfcheck"]["disk_paths"]
    assert paths, "the self-check watches no directory's free space"
    free = max(int(APP.check_output(f"df -Pm {shlex.quote(p)} | awk 'NR==2 {{print $4}}'")) for p in paths)
    config["selfcheck"]["min_free_disk_mb"] = threshold = free + 1024 * 1024
    workdir = APP.check_output("mktemp -d /tmp/pq-selfcheck-XXXXXX")
    try:
        APP.check_output(
            f"chown {shlex.quote(monitor_user())} {shlex.quote(workdir)} && chmod 0700 {shlex.quote(workdir)}"
        )
        write_as_monitor(f"{workdir}/monitors.json", json.dumps(config))
        yield f"{workdir}/monitors.json", paths, threshold
    finally:
        APP.check_output(f"rm -rf {shlex.quote(workdir)}")


def test_low_disk_is_named():
    """Free space below the threshold: the real check, its threshold raised above the real free space."""
    with settings_with_min_free_disk_above_the_free_space() as (copy, paths, threshold):
        reset_sink()
        rc, problems, out = selfcheck("--config", copy)
        assert rc == 1, out
        assert len(problems) == len(paths), out
        for path, problem in zip(paths, problems, strict=True):
            assert re.fullmatch(rf"only \d+ MiB free under {re.escape(path)} \(minimum {threshold}\)", problem), out
        received = wait_for(all_warned, what="the self-check WARNING")
        for channel, texts in received.items():
            assert len(texts) == 1, (channel, texts)
            for path in paths:
                assert f"MiB free under {path} (minimum {threshold})" in texts[0], (channel, texts[0])
    assert_clean()


def test_everything_at_once_each_is_named_then_all_clean():
    jobs = watched_jobs()
    job = "errors" if "errors" in jobs else sorted(jobs)[0]
    follow = VARS["peerquest_monitors_follow_enabled"]
    unit = monitors_config()["follow"]["unit"]
    directory = shlex.quote(STATE_DIR)
    mode = APP.check_output(f"stat -c %a {directory}")
    with settings_with_min_free_disk_above_the_free_space() as (copy, paths, threshold):
        set_last_runs({job: int(jobs[job]) + 600})
        if follow:
            APP.check_output(f"systemctl stop {shlex.quote(unit)}")
        APP.check_output(f"chmod 0500 {directory}")
        try:
            reset_sink()
            rc, problems, out = selfcheck("--config", copy)
            assert rc == 1, out
            expected = [f"{job} last ran ", f"{STATE_DIR} is not writable by the monitors"]
            expected += [f"MiB free under {path} (minimum {threshold})" for path in paths]
            if follow:
                expected.append(f"the CRITICAL follower is not running: {unit} is inactive")
            assert len(problems) == len(expected), out
            received = wait_for(all_warned, what="the self-check WARNING")
            for text in expected:
                assert any(text in p for p in problems), (text, out)
                for channel, texts in received.items():
                    assert len(texts) == 1 and text in texts[0], (channel, text, texts)
        finally:
            APP.check_output(f"chmod {mode} {directory}")
            set_last_runs({job: 0})
            if follow:
                APP.check_output(f"systemctl start {shlex.quote(unit)}")
    assert_clean()
