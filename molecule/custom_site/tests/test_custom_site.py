"""custom_site: PeerQuest Ops on a PeerQuest whose inventory changes every value.

Two app hosts and a capture sink; every path, account, port, URL, retention and
threshold differs from the roles' defaults (group_vars/), the app is a
"questhub" with its own settings module, ALLOWED_HOSTS without "*", its own
TIME_ZONE and secrets only in its unit's EnvironmentFile. The values come from
deployed-vars.json (pqtest); what only the stand-in knows (its settings module,
time zone) from /etc/pq-standin.json on each app host (molecule/resources/prepare.yml).
"""

import glob
import json
import os
import re
import shlex
import subprocess
import sys
import time
from datetime import datetime

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    EPHEMERAL_DIR,
    PROJECT_DIR,
    V,
    app_hosts,
    app_http,
    app_service,
    captured_mail,
    files_receiving,
    host,
    host_name,
    log_path,
    log_through_django,
    marker,
    monitor_cmd,
    monitor_user,
    monitors_state_dir,
    recipients,
    subject,
    wait_for,
)

CRON_FILE = "/etc/cron.d/peerquest-monitoring"
FOLLOWER = "peerquest-monitor-follow.service"
STANDIN_FACTS = "/etc/pq-standin.json"
APPS = app_hosts()
APP1, APP2 = APPS[0], APPS[-1]


def standin(h):
    """What prepare.yml made of the stand-in app on a host (settings module, time zone ...)."""
    return json.loads(host(h).file(STANDIN_FACTS).content_string)


@pytest.fixture(scope="module", autouse=True)
def quiet_cron():
    """A scheduled errors scan would race the tests for the follower's lines: pause cron meanwhile."""
    for h in APPS:
        host(h).check_output("systemctl stop cron.service")
    yield
    for h in APPS:
        host(h).check_output("systemctl start cron.service")


# ------------------------------------------------------ the inventory itself


def _role_defaults():
    out = {}
    for path in sorted(glob.glob(os.path.join(PROJECT_DIR, "roles", "*", "defaults", "main.yml"))):
        with open(path, encoding="utf-8") as handle:
            out.update(yaml.safe_load(handle) or {})
    return out


def _is_site_value(name, default):
    """A default this scenario must change: a path, URL, account, group, unit, port,
    retention period or threshold (a number), written as a literal in the defaults."""
    if isinstance(default, bool):
        return False
    if isinstance(default, int):
        return True
    if isinstance(default, str) and "{{" not in default:
        return default.startswith(("/", "http://", "https://")) or name.endswith(("_user", "_group", "_service"))
    return False


# Roles of the monitoring hosts: their values are read there.
MONITORING_ROLES = (
    "peerquest_prometheus_",
    "peerquest_alertmanager_",
    "peerquest_blackbox_",
    "peerquest_dashboards_",
    "peerquest_runbook_",
    "peerquest_trends_",
)


def test_every_site_value_differs_from_the_role_defaults():
    deployed = V(APP1)
    monitoring = V("mon")
    same = []
    for name, default in sorted(_role_defaults().items()):
        # Dependent inputs are wired, not set; /etc/default/<package> is the file Debian's unit reads.
        if "__" in name or name.endswith("_defaults_path"):
            continue
        values = monitoring if name.startswith(MONITORING_ROLES) else deployed
        if _is_site_value(name, default) and values.get(name) == default:
            same.append(f"{name}={default!r}")
    retention = deployed["peerquest_logrotate_retention_days"]
    defaults = _role_defaults()
    same += [
        f"peerquest_logrotate_retention_days.{level}"
        for level, days in defaults["peerquest_logrotate_retention_days"].items()
        if retention.get(level) == days
    ]
    for var, keys in (
        ("peerquest_monitors_error_patterns", ("threshold",)),
        ("peerquest_monitors_rates", ("max_percent", "min_events")),
    ):
        mine = {item["name"]: item for item in deployed[var]}
        for item in defaults[var]:
            same += [f"{var}[{item['name']}].{key}" for key in keys if mine[item["name"]][key] == item[key]]
    assert not same, "custom_site must differ from the defaults in: " + ", ".join(same)


# --------------------------------------------------------------- schedule


def cron_jobs(h):
    """{job name: cron line fields} of a host's monitoring schedule; the name is its lock's."""
    jobs = {}
    for line in host(h).file(CRON_FILE).content_string.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 6)
        lock = re.search(r"/([^/\s]+)\.lock\b", line)
        assert lock, f"a job without a lock: {line}"
        jobs[lock.group(1)] = {"time": fields[:5], "user": fields[5], "command": fields[6], "line": line}
    return jobs


def test_integrity_runs_on_exactly_one_app_host():
    assert len(APPS) == 2
    assert V(APP1)["peerquest_monitors_integrity_host"] == APP1
    with_integrity = [h for h in APPS if "integrity" in cron_jobs(h)]
    assert with_integrity == [APP1]


def test_the_same_job_runs_at_other_minutes_on_each_host():
    one, two = cron_jobs(APP1), cron_jobs(APP2)
    common = sorted(set(one) & set(two))
    assert len(common) >= 5, common
    # Jobs at a fixed minute (hourly and slower) must each be spread; the rest at least not all alike.
    fixed = [name for name in common if one[name]["time"][0].isdigit() and two[name]["time"][0].isdigit()]
    assert fixed, "no job at a fixed minute on both hosts"
    assert [name for name in fixed if one[name]["time"][0] == two[name]["time"][0]] == []
    assert [one[name]["time"] for name in common] != [two[name]["time"] for name in common]


@pytest.mark.parametrize("h", APPS)
def test_cron_uses_the_sites_account_locks_and_log(h):
    user = monitor_user(h)
    locks = f"{monitors_state_dir(h)}/locks/"
    log = V(h)["peerquest_monitors_log_file"]
    command = V(h)["peerquest_monitors_command_path"]
    assert user != "peerquest-ops" and not locks.startswith("/var/lib/peerquest-monitoring")
    jobs = cron_jobs(h)
    assert jobs
    for name, job in jobs.items():
        assert job["user"] == user, job["line"]
        assert f"{locks}{name}.lock" in job["command"], job["line"]
        assert f">> {log} " in job["command"], job["line"]
    assert any(command in job["command"] for job in jobs.values())
    text = host(h).file(CRON_FILE).content_string
    for default in ("/var/lib/peerquest-monitoring", "/var/log/peerquest-monitoring", "/usr/local/bin/peerquest-"):
        assert default not in text


# ---------------------------------------------------------- CRITICAL path


def mails_with(tag):
    return [m for m in captured_mail() if tag in m["body"]]


def assert_critical_mail(mail, h):
    assert mail["subject"] == subject("CRITICAL", h)
    assert set(recipients("CRITICAL", h)) <= set(mail["rcpt_tos"]), mail["rcpt_tos"]


@pytest.mark.parametrize("h", APPS)
@pytest.mark.parametrize("logger", ["billing", "audit"])
def test_critical_from_any_logger_reaches_the_critical_recipient(h, logger):
    """billing: configured nowhere (reaches the root); audit: does not propagate."""
    loggers = V(h)["peerquest_logging_loggers"]
    if logger == "billing":
        assert "billing" not in loggers
    else:
        assert loggers[logger]["propagate"] is False
    tag = marker(f"crit-{logger}")
    assert host(h).service(FOLLOWER).is_running
    log_through_django(h, logger, "CRITICAL", f"{tag} payment ledger out of balance")
    mails = wait_for(lambda: mails_with(tag), timeout=60, what=f"the CRITICAL mail for {tag}")
    assert len(mails) == 1, mails
    assert_critical_mail(mails[0], h)


def test_with_the_follower_down_the_scan_alerts_a_critical_line_exactly_once():
    h = APP2
    app = host(h)
    beat = f"{monitors_state_dir(h)}/follow.heartbeat"
    tag = marker("crit-scan")
    app.check_output(f"systemctl stop {FOLLOWER}")
    try:
        # As if the follower had been silent for an hour: longer than any takeover time.
        app.check_output(f"touch -d '-1 hour' {shlex.quote(beat)}")
        log_through_django(h, "billing", "CRITICAL", f"{tag} card processor unreachable")
        app.check_output(f"{monitor_cmd(h)} errors")
        mails = wait_for(lambda: mails_with(tag), timeout=30, what=f"the scan's CRITICAL mail for {tag}")
        assert len(mails) == 1, mails
        assert_critical_mail(mails[0], h)
        app.check_output(f"{monitor_cmd(h)} errors")
    finally:
        app.check_output(f"systemctl start {FOLLOWER}")
    # The follower catches up from the shared cursor: nothing more for that line.
    poll = int(V(h)["peerquest_monitors_follow_poll_seconds"])
    wait_for(lambda: _age(app, beat) <= poll + 1, timeout=30, what="a heartbeat of the restarted follower")
    time.sleep(3 * poll + 2)
    assert len(mails_with(tag)) == 1


def _age(app, path):
    """Seconds since a file on a host was last modified, by the host's clock."""
    return int(app.check_output(f"echo $(( $(date +%s) - $(stat -c %Y {shlex.quote(path)}) ))"))


# ---------------------------------------------- first deploy, un-integrated


def _ansible(*args):
    """ansible-playbook from the project directory with its ansible.cfg and the scenario's inventory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") or k == "ANSIBLE_COLLECTIONS_PATH"}
    env.update(
        ANSIBLE_CONFIG=os.path.join(PROJECT_DIR, "ansible.cfg"),
        # The same vault identity as molecule.yml.
        ANSIBLE_VAULT_IDENTITY_LIST=f"sandbox@{PROJECT_DIR}/inventory/sandbox/vault-password.txt",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    done = subprocess.run(
        ["ansible-playbook", "-i", os.path.join(EPHEMERAL_DIR, "inventory"), *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _flat(text):
    """Output with YAML line folding and quoting undone enough to search for a line of code."""
    return re.sub(r"\s+", " ", text.replace('\\"', '"'))


def _integrate(h, state):
    rc, out = _ansible("molecule/resources/integrate.yml", "--limit", h, "-e", f"pq_standin_integration={state}")
    assert rc == 0, out[-3000:]


def _reported_skip(out):
    """'skipped' anywhere but the play recap's counters."""
    return "skipped" in re.sub(r"skipped=\d+", "", out)


def test_first_deploy_onto_an_unintegrated_app_reports_the_missing_lines():
    h = APP2
    _integrate(h, "plain")
    try:
        assert app_http("GET", "/health/quick/", h=h)[0] == 404
        rc, out = _ansible("site.yml", "--limit", h, "--tags", "health")
        flat = _flat(out)
        assert rc == 0, out[-3000:]
        assert h in flat
        for needle in (
            "PYTHONPATH",
            V(h)["peerquest_app_ops_python_dir"],
            "from peerquest_logging.settings import LOGGING",
            'path("", include("peerquest_health.urls"))',
        ):
            assert needle in flat, f"{needle!r} not in the report:\n{out[-3000:]}"
        assert _reported_skip(out), out[-3000:]
    finally:
        _integrate(h, "integrated")
    assert app_http("GET", "/health/quick/", h=h)[0] == 200
    rc, out = _ansible("site.yml", "--limit", h, "--tags", "health")
    assert rc == 0, out[-3000:]
    assert not _reported_skip(out), out[-3000:]
    assert 'include("peerquest_health.urls")' not in _flat(out)


# ------------------------------------------------- Host header, time zone


@pytest.mark.parametrize("h", APPS)
def test_health_answers_only_with_an_accepted_host_header(h):
    assert "127.0.0.1" not in standin(h)["allowed_hosts"]
    assert app_http("GET", "/health/quick/", h=h, headers={"Host": "127.0.0.1"})[0] == 400
    status, body = app_http("GET", "/health/quick/", h=h)
    assert status == 200, body
    token = V(h)["peerquest_health_token"]
    status, body = app_http("GET", "/health/", h=h, headers={"Authorization": f"Bearer {token}"})
    assert status in (200, 503), body
    assert json.loads(body)["status"] in ("healthy", "degraded", "unhealthy")


@pytest.mark.parametrize("h", APPS)
def test_log_timestamps_follow_the_apps_time_zone(h):
    app = host(h)
    zone = standin(h)["time_zone"]
    assert zone not in ("UTC", "Etc/UTC")
    assert app.check_output("date +%z") == "+0000", "the host itself must stay on UTC"
    tag = marker("tz")
    log_through_django(h, "quests", "WARNING", f"{tag} time zone probe")
    before = int(app.check_output("date +%s"))
    files = files_receiving("quests", "WARNING", h)
    assert files
    line = wait_for(
        lambda: next((x for x in app.file(log_path(files[0], h)).content_string.splitlines() if tag in x), None),
        timeout=15,
        what=f"the {tag} line",
    )
    stamp = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line)
    assert stamp, line
    logged = datetime.strptime(stamp.group(0), "%Y-%m-%d %H:%M:%S")

    def rendered(tz):
        return datetime.strptime(
            app.check_output(f"TZ={shlex.quote(tz)} date -d @{before} '+%Y-%m-%d %H:%M:%S'"), "%Y-%m-%d %H:%M:%S"
        )

    assert abs((logged - rendered(zone)).total_seconds()) < 120, (line, zone)
    assert abs((logged - rendered("UTC")).total_seconds()) > 3600, (line, "logged in the host's UTC")


# ---------------------------------------------------------- the app itself


@pytest.mark.parametrize("h", APPS)
def test_the_app_runs_as_the_inventory_says_with_secrets_only_in_its_unit(h):
    facts = standin(h)
    app = host(h)
    assert facts["service"] == app_service(h) and app.service(app_service(h)).is_running
    assert facts["integrated"] is True
    env_file = app.file(facts["env_file"])
    assert (env_file.user, env_file.group, env_file.mode) == ("root", "root", 0o600)
    settings = app.file(facts["settings_file"]).content_string
    assert 'os.environ["PEERQUEST_SECRET_KEY"]' in settings
    assert "from peerquest_logging.settings import LOGGING" in settings
    # Without the unit's environment the settings do not even load.
    bare = app.run(
        f"cd {shlex.quote(facts['dir'])} && sudo -u {shlex.quote(facts['user'])} "
        f"DJANGO_SETTINGS_MODULE={shlex.quote(facts['settings_module'])} {shlex.quote(facts['python'])} manage.py check"
    )
    assert bare.rc != 0 and "PEERQUEST_SECRET_KEY" in bare.stderr
    secret = app.check_output(f"sed -n 's/^PEERQUEST_SECRET_KEY=//p' {shlex.quote(facts['env_file'])}")
    assert secret and secret not in app.check_output("ps -eo args")


def test_hosts_are_named_as_the_scenario_says():
    assert APPS == ["pq-custom-site-app1", "pq-custom-site-app2"]
    assert host_name("sink") == "pq-custom-site-sink"
