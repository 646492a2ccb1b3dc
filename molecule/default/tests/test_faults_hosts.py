"""Host faults: each ends in a clear error or an alert, and nothing is lost.

- the disk holding the app's logs and the alert spool is full: the app keeps
  serving, /health/ says so, the self-check's alert goes out over the network,
  and an alert queued before is delivered once when space returns;
- the log directory is removed at run time: the app's logging says so on its
  stderr (the journal), /health/'s log_dir check and the health job's alert
  name it, and the next converge puts it back with its owner and mode;
- the CRITICAL follower is dead across a scan: the self-check names it, the
  errors scan alerts its lines, and when it comes back no line is alerted twice.

A full disk is a small filesystem made for the test: the directories are
replaced by empty ones on the container's own tmpfs (pqtest.SMALL_FS), which
is then filled. The follower is stopped meanwhile: the directories' files are
new ones, and it would take them for rotated logs.
"""

import os
import shlex
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    VIA_ALERTMANAGER,
    V,
    alert_cmd,
    alert_user,
    app_http,
    app_json,
    app_service,
    app_user,
    apply_role,
    cron_paused,
    delivered,
    delivered_text,
    direct_delivery,
    files_receiving,
    fill_filesystem,
    follower_stopped,
    forget_dedup,
    free_filesystem,
    health_auth,
    hook_name,
    host,
    host_now,
    http,
    journal_since,
    line_count,
    lines_after,
    log_dir,
    log_group,
    log_path,
    log_through_django,
    make_spool_due,
    marker,
    monitoring_log,
    monitors_config,
    monitors_state_dir,
    on_small_filesystem,
    reset_sink,
    routes,
    run_job,
    sink_url,
    spool_dir,
    spooled,
    wait_for,
)

APP = host("app")
SINK = host("sink")
VARS = V()


def channels_for(severity):
    channels = routes(severity)
    if not channels:
        pytest.skip(f"{severity} is routed to no channel in this inventory")
    return channels


def arrived(severity, text, timeout=90):
    """Wait until every channel routed for severity received text; {channel: [texts]}."""

    def got():
        found = {c: [delivered_text(r) for r in delivered(c, text)] for c in channels_for(severity)}
        return found if all(found.values()) else None

    return wait_for(got, timeout=timeout, what=f"{severity} alert with {text!r} at {channels_for(severity)}")


def handed_over(lines, severity, key_part, text, repeated=False):
    """The job handed its alert to peerquest-alert and it was taken (exit 0), and every channel routed
    for severity received text. Through Alertmanager a key that may be firing already (repeated: an
    earlier test's health:degraded or selfcheck:follower) is grouped with it, not sent again: there
    only the hand-over is asserted."""
    mine = [line for line in lines if f" {severity} alert key=" in line and key_part in line]
    assert mine and " exit=0 " in mine[-1], "\n".join(lines)
    return {} if repeated and VIA_ALERTMANAGER else arrived(severity, text)


def drain():
    """Deliver what an earlier test left queued (the spool moves aside empty, or not at all)."""
    APP.run(f"sudo -u {shlex.quote(alert_user())} flock -w 60 {shlex.quote(spool_dir() + '/.lock')} true")
    make_spool_due()
    APP.run(f"{alert_cmd()} --flush-spool")


def job_output(name):
    """Run a scheduled job as cron does; the lines it appended to the monitoring log."""
    start = line_count(APP, monitoring_log())
    run_job(name)
    return lines_after(APP, monitoring_log(), start)


def health():
    return app_json("GET", "/health/", headers=health_auth())


def settle(job):
    """Run job once all is mended: what it raised is resolved (through Alertmanager, ended now),
    so a later test's alert for the same key is a new one, not grouped with this test's."""
    lines = job_output(job)
    assert any(f" peerquest-monitor {job}" in line for line in lines), lines


# ------------------------------------------------------------------ disk full


def test_a_full_disk_keeps_the_app_serving_and_is_reported_and_alerted():
    log, spool = log_dir(), spool_dir()
    with cron_paused(), follower_stopped():
        drain()
        forget_dedup()
        with on_small_filesystem([log, spool]) as small:
            assert fill_filesystem(small) == 0
            since = host_now()
            # The app serves its pages; a record it cannot write costs nothing but the record.
            assert app_http("GET", "/standin/ping/")[0] == 200
            log_through_django(APP, "quests", "ERROR", f"disk full {marker('full')}")
            assert app_http("GET", "/standin/ping/")[0] == 200
            # ... and its logging says why on stderr, which the journal keeps.
            assert "No space left on device" in journal_since(app_service(), since)
            status, body = health()
            assert status == 503 and body["status"] == "degraded", body
            assert body["checks"]["disk"]["free_mb"] == 0 and body["checks"]["disk"]["result"] == "LOW", body
            # The self-check names both full directories; its alert needs no disk on this host.
            reset_sink()
            lines = job_output("selfcheck")
            minimum = monitors_config()["selfcheck"]["min_free_disk_mb"]
            for path in (log, spool):
                problem = f"only 0 MiB free under {path} (minimum {minimum})"
                assert f" selfcheck: PROBLEM {problem}" in "\n".join(lines), lines
                for channel, texts in handed_over(lines, "WARNING", f"disk:{path}", problem).items():
                    assert len(texts) == 1, (channel, texts)
            free_filesystem(small)
            status, body = health()
            assert body["checks"]["disk"]["free_mb"] > 0, body
    settle("selfcheck")


@direct_delivery
def test_an_alert_queued_before_the_disk_filled_is_delivered_once_when_space_returns():
    channel = next((c for c in ("webhook", "discord", "slack") if c in channels_for("CRITICAL")), None)
    if channel is None:
        pytest.skip("CRITICAL is routed to no webhook channel here")
    tag = marker("queued")
    fail = f"{sink_url()}/_control/fail?path={hook_name(channel)}&count=1&status=500"
    with cron_paused(), follower_stopped():
        drain()
        reset_sink()
        with on_small_filesystem([log_dir(), spool_dir()]) as small:
            assert http(SINK, "POST", fail)[0] == 200
            queued = APP.run(f"{alert_cmd()} --severity CRITICAL --message {shlex.quote('queued ' + tag)}")
            assert queued.rc == 75, queued.stderr
            [name] = [n for n in spooled() if channel in n]
            entry = f"{spool_dir()}/{name}"
            make_spool_due()
            before = APP.check_output(f"cat {shlex.quote(entry)}")
            assert fill_filesystem(small) == 0
            # A retry that fails while the disk is full cannot rewrite the entry: it stays as it was.
            assert http(SINK, "POST", fail)[0] == 200
            flushed = APP.run(f"{alert_cmd()} --flush-spool")
            assert flushed.rc != 0 and "No space left on device" in flushed.stderr, flushed.stderr
            assert APP.check_output(f"cat {shlex.quote(entry)}") == before
            assert delivered(channel, tag) == []
            free_filesystem(small)
            assert APP.run(f"{alert_cmd()} --flush-spool").rc == 0
            assert APP.run(f"{alert_cmd()} --flush-spool").rc == 0
            assert len(delivered(channel, tag)) == 1
            assert [n for n in spooled() if channel in n] == []


# --------------------------------------------------- the log directory removed


def assert_reported_alerted_and_mended(said, since, mended):
    """The app's logging said it (journal), /health/'s log_dir is ERROR and the health job alerted;
    the next converge (peerquest_logdir applied again) mends it, as mended() checks, and /health/ is OK."""
    journal = journal_since(app_service(), since)
    assert "--- Logging error ---" in journal and said in journal, journal
    status, body = health()
    assert status == 503 and body["checks"]["log_dir"] == "ERROR", body
    for channel, texts in handed_over(job_output("health"), "WARNING", "health:degraded", "reports", True).items():
        assert len(texts) == 1 and "log_dir" in texts[0], (channel, texts)
    done = apply_role("peerquest_logdir")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    mended()
    assert health()[1]["checks"]["log_dir"] == "OK"


def test_a_removed_log_directory_is_reported_alerted_and_restored_by_the_next_converge():
    path = log_dir()
    saved = f"{path}.pq-removed"
    healthy = health()[1]
    assert healthy["checks"]["log_dir"] == "OK", healthy
    with cron_paused(), follower_stopped():
        forget_dedup()
        reset_sink()
        since = host_now()
        APP.check_output(f"mv -T {shlex.quote(path)} {shlex.quote(saved)}")
        try:
            log_through_django(APP, "quests", "ERROR", f"nowhere to go {marker('gone')}")

            def restored():  # as the role makes it
                owner = APP.check_output(f"stat -c '%U %G %a' {shlex.quote(path)}").split()
                assert owner == [app_user(), log_group(), VARS["peerquest_logdir_dir_mode"].lstrip("0")], owner

            assert_reported_alerted_and_mended(f"No such file or directory: '{path}/", since, restored)
        finally:
            # The original directory and its files (the same inodes: no reader sees a rotation).
            APP.run(f"rm -rf {shlex.quote(path)}")
            APP.check_output(f"mv -T {shlex.quote(saved)} {shlex.quote(path)}")
            settle("health")


def test_an_unwritable_log_directory_is_reported_alerted_and_mended_by_the_next_converge():
    """The directory made unwritable while the app runs: open files still take lines, so the app's
    logging speaks when it must create one (a file rotated away, here moved aside)."""
    path = log_dir()
    follow = monitors_config().get("follow") or {}
    followed = follow.get("log_file") if follow.get("enabled") else None
    names = [n for n in files_receiving("quests", "ERROR") if log_path(n) != followed]
    if not names:
        pytest.skip("no log file but the follower's takes the app's ERROR records here")
    target, aside = log_path(names[0]), f"{log_path(names[0])}.pq-aside"
    mode = APP.check_output(f"stat -c %a {shlex.quote(path)}")
    with cron_paused():
        forget_dedup()
        reset_sink()
        since = host_now()
        APP.check_output(f"mv -T {shlex.quote(target)} {shlex.quote(aside)} && chmod a-w {shlex.quote(path)}")
        try:
            log_through_django(APP, "quests", "ERROR", f"cannot create {marker('ro')}")

            def writable_again():
                assert APP.check_output(f"stat -c %a {shlex.quote(path)}") == VARS["peerquest_logdir_dir_mode"].lstrip(
                    "0"
                )

            assert_reported_alerted_and_mended(f"Permission denied: '{target}'", since, writable_again)
        finally:
            APP.check_output(f"chmod {mode} {shlex.quote(path)} && mv -fT {shlex.quote(aside)} {shlex.quote(target)}")
            settle("health")


# ------------------------------------------------ the follower dead across a scan


def alert_lines(tag):
    """The monitors' "alert key=follow:" lines about tag in the monitoring log (the follower's or a scan's)."""
    return [
        line
        for line in APP.check_output(f"cat {shlex.quote(monitoring_log())}").splitlines()
        if tag in line and " alert key=follow:" in line
    ]


def test_a_follower_dead_across_a_scan_is_named_its_lines_alerted_once():
    if not VARS["peerquest_monitors_follow_enabled"]:
        pytest.skip("the CRITICAL follower is off in this inventory")
    takeover = monitors_config()["follow"]["takeover_seconds"]
    heartbeat = f"{monitors_state_dir()}/follow.heartbeat"
    during, after = [marker("dead") for _ in range(3)], marker("back")
    reset_sink()
    forget_dedup()
    with cron_paused():
        with follower_stopped() as unit:
            for tag in during:
                log_through_django(APP, "quests", "CRITICAL", f"ledger mismatch {tag}")
            # Dead for longer than a scan waits before standing in (its last heartbeat that long ago).
            APP.check_output(f"touch -d @{time.time() - takeover - 60:.0f} {shlex.quote(heartbeat)}")
            out = "\n".join(job_output("errors"))
            assert "this scan alerted its lines" in out, out
            for tag in during:
                assert len(alert_lines(tag)) == 1, alert_lines(tag)
            lines = job_output("selfcheck")
            problem = f"the CRITICAL follower is not running: {unit} is inactive"
            assert f" selfcheck: PROBLEM {problem}" in "\n".join(lines), lines
            handed_over(lines, "WARNING", "follower", problem, repeated=True)
            for tag in during:
                arrived("CRITICAL", tag)
        # Back: it goes on from the shared cursor, after the lines the scan alerted.
        log_through_django(APP, "quests", "CRITICAL", f"ledger mismatch {after}")
        wait_for(lambda: alert_lines(after), timeout=60, what="the follower back, alerting a new line")
        arrived("CRITICAL", after)
        for tag in [*during, after]:
            assert len(alert_lines(tag)) == 1, alert_lines(tag)
            for channel in channels_for("CRITICAL"):
                assert len(delivered(channel, tag)) == 1, (channel, tag)
        assert APP.run(f"systemctl is-active {shlex.quote(unit)}").stdout.strip() == "active"
    settle("selfcheck")
