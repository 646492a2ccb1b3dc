"""After molecule/resources/absent.yml (every peerquest_* role with state absent).

What each role installed is gone; what an ops engineer keeps stays: the log
files and their directory, monitoring.log, the accounts and group that own
them, the directories peerquest_app made (it has no state) and the system
packages (cron, logrotate, sudo) other software may use. The app keeps
running without PeerQuest Ops. A second run changes nothing, and a removal
that would break an app still importing the packages is refused.

Every path and account comes from deployed-vars.json; the few names below are
fixed in the roles' tasks, not variables.
"""

import os
import re
import shlex
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import (  # noqa: E402
    GROUPS,
    PROJECT_DIR,
    V,
    alert_command,
    alert_state_dir,
    alert_user,
    app_hosts,
    app_http,
    app_service,
    app_user,
    host,
    host_name,
    integrity_result_file,
    log_dir,
    log_files,
    log_group,
    log_path,
    log_through_django,
    marker,
    monitor_command,
    monitor_user,
    monitoring_log,
    monitoring_log_dir,
    monitors_state_dir,
    ops_config_dir,
    ops_lib_dir,
    ops_python_dir,
    ops_state_dir,
    run_playbook,
    spool_dir,
)

# Verified in the default scenario too (molecule/default/molecule.yml selects by this mark).
pytestmark = pytest.mark.default_scenario

APP = host("app")
APP_NAME = host_name("app")
# Fixed in roles/peerquest_monitors/tasks/configure.yml (no variable names them).
CRON_FILE = "/etc/cron.d/peerquest-monitoring"
SUDOERS_FILE = "/etc/sudoers.d/peerquest-monitoring"


def monitors_vars():
    with open(os.path.join(PROJECT_DIR, "roles", "peerquest_monitors", "vars", "main.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


FOLLOW_UNIT = monitors_vars()["_peerquest_monitors_follow_unit"]


def main_pid(name=None):
    name = name or APP_NAME
    return host(name).check_output(f"systemctl show -p MainPID --value {shlex.quote(app_service(name))}").strip()


def playbook(path, extra=None, tags=None, limit=APP_NAME):
    """ansible-playbook on app hosts (the first by default) with the scenario's inventory and settings."""
    return run_playbook(path, extra, tags=tags, limit=limit)


def recap_changed(stdout):
    """changed= of every host in the play recap."""
    return {name: int(count) for name, count in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", stdout, re.M)}


# peerquest_logging and peerquest_health


@pytest.mark.parametrize("name", app_hosts())
def test_the_packages_the_app_imported_are_gone(name):
    target = host(name)
    for package in ("peerquest_logging", "peerquest_health"):
        assert not target.file(f"{ops_python_dir(name)}/{package}").exists, package
    assert not target.file(V(name)["peerquest_health_config_path"]).exists
    # peerquest_app's directory stays (that role has no state); nothing is left in it.
    assert target.file(ops_python_dir(name)).is_directory
    assert target.check_output(f"ls -A {shlex.quote(ops_python_dir(name))}") == ""


@pytest.mark.parametrize("name", app_hosts())
def test_the_app_runs_without_them_and_logs_into_no_deployed_file(name):
    target = host(name)
    assert main_pid(name) not in ("", "0")
    assert app_http("GET", "/standin/ping/", h=name)[0] == 200
    assert app_http("GET", "/health/quick/", h=name)[0] == 404
    tag = marker("gone")
    log_through_django(name, "applications", "ERROR", f"{tag} after removal")
    for log in log_files(name):
        assert tag not in target.check_output(f"cat {shlex.quote(log_path(log, name))}"), log


# peerquest_alerting and peerquest_monitors


@pytest.mark.parametrize("name", app_hosts())
def test_the_commands_programs_and_settings_are_gone(name):
    target = host(name)
    for command in (alert_command(name), monitor_command(name)):
        assert not target.file(command).exists, command
        assert target.run(f"command -v {shlex.quote(os.path.basename(command))}").rc != 0, command
    for program in ("peerquest-alert", "peerquest-monitor", "peerquest-audit"):
        assert not target.file(f"{ops_lib_dir(name)}/{program}").exists, program
    for setting in ("peerquest_alerting_config_path", "peerquest_monitors_config_path"):
        assert not target.file(V(name)[setting]).exists, setting
    # peerquest_app's directories stay, empty.
    for directory in (ops_lib_dir(name), ops_config_dir(name)):
        assert target.check_output(f"ls -A {shlex.quote(directory)}") == "", directory


@pytest.mark.parametrize("name", app_hosts())
def test_nothing_runs_on_a_schedule_as_a_service_or_with_sudo(name):
    target = host(name)
    user = shlex.quote(monitor_user(name))
    assert not target.file(CRON_FILE).exists
    assert not target.file(SUDOERS_FILE).exists
    cron = "/etc/cron.d /etc/crontab /var/spool/cron"
    assert target.run(f"grep -rlF {shlex.quote(monitor_command(name))} {cron}").stdout == ""
    assert target.run(f"grep -rlF {shlex.quote(ops_lib_dir(name))} /etc/sudoers /etc/sudoers.d").stdout == ""
    assert not target.file(f"/etc/systemd/system/{FOLLOW_UNIT}").exists
    shown = target.check_output(f"systemctl show -p LoadState -p ActiveState {shlex.quote(FOLLOW_UNIT)}")
    assert "LoadState=not-found" in shown and "ActiveState=inactive" in shown, shown
    assert target.run(f"pgrep -u {user}").stdout == ""
    assert ops_lib_dir(name) not in target.run(f"sudo -l -U {user}").stdout


@pytest.mark.parametrize("name", app_hosts())
def test_spool_dedup_monitor_state_and_integrity_result_are_gone(name):
    target = host(name)
    for path in (spool_dir(name), alert_state_dir(name), monitors_state_dir(name), integrity_result_file(name)):
        assert not target.file(path).exists, path
    assert target.file(ops_state_dir(name)).is_directory


# peerquest_logrotate


@pytest.mark.parametrize("name", app_hosts())
def test_no_rotation_rule_is_left(name):
    target = host(name)
    assert not target.file(V(name)["peerquest_logrotate_config_path"]).exists
    for directory in (log_dir(name), monitoring_log_dir(name)):
        assert target.run(f"grep -rlF {shlex.quote(directory)} /etc/logrotate.d /etc/logrotate.conf").stdout == ""
    # The system's logrotate stays: other software rotates with it.
    assert target.run("dpkg -s logrotate").rc == 0


# What stays


@pytest.mark.parametrize("name", app_hosts())
def test_the_logs_their_directories_accounts_and_group_stay(name):
    target, values = host(name), V(name)
    directory = target.file(log_dir(name))
    modes = int(values["peerquest_logdir_dir_mode"], 8), int(values["peerquest_logdir_file_mode"], 8)
    assert (directory.user, directory.group, directory.mode) == (app_user(name), log_group(name), modes[0])
    for log in log_files(name):
        found = target.file(log_path(log, name))
        assert (found.user, found.group, found.mode) == (app_user(name), log_group(name), modes[1]), log
    kept = target.file(monitoring_log(name))
    assert kept.is_file and kept.user == alert_user(name)
    assert target.user(alert_user(name)).exists
    assert target.group(log_group(name)).exists
    for reader in values["peerquest_logdir_readers"]:
        assert log_group(name) in target.user(reader).groups, reader
    # The monitors no longer read the logs (unless the inventory names their account a reader).
    if monitor_user(name) not in values["peerquest_logdir_readers"]:
        assert log_group(name) not in target.user(monitor_user(name)).groups


def test_phase_3_is_gone_from_the_app_hosts_and_the_monitoring_host():
    for name in app_hosts():
        target, values = host(name), V(name)
        for unit in ("prometheus-node-exporter.service", "mtail.service"):
            assert not target.service(unit).is_running, (name, unit)
        assert not target.file(f"{values['peerquest_mtail_progs_dir']}/peerquest.mtail").exists
        assert not target.file(values["peerquest_node_exporter_textfile_dir"]).exists
    if not GROUPS.get("peerquest_monitoring"):
        return  # no monitoring host in this scenario
    mon, values = host("mon"), V("mon")
    for unit in ("prometheus.service", "prometheus-alertmanager.service", "prometheus-blackbox-exporter.service"):
        assert not mon.service(unit).is_running, unit
    consoles = values["peerquest_dashboards_consoles_dir"]
    for path in (
        f"{consoles}/peerquest.html",
        f"{values['peerquest_runbook_consoles_dir']}/peerquest-runbook.html",
        values["peerquest_dashboards_queries_file"],
        values["peerquest_prometheus_credentials_file"],
        values["peerquest_blackbox_credentials_file"],
        values["peerquest_trends_command_path"],
        values["peerquest_trends_config_path"],
    ):
        assert not mon.file(path).exists, path
    assert not mon.user(values["peerquest_trends_user"]).exists


def test_the_log_forwarding_is_gone_from_the_app_hosts_and_the_monitoring_host():
    """peerquest_logship and peerquest_logstore (playbooks/logforward.yml): their rules and certificates
    go; the queue and the stored logs stay (they may hold lines not sent or not read yet)."""
    for name in app_hosts():
        target, values = host(name), V(name)
        for path in (values["peerquest_logship_config_path"], values["peerquest_logship_tls_dir"]):
            assert not target.file(path).exists, (name, path)
    if not GROUPS.get("peerquest_monitoring"):
        return  # no monitoring host in this scenario
    mon, values = host("mon"), V("mon")
    for var in ("peerquest_logstore_config_path", "peerquest_logstore_logrotate_path", "peerquest_logstore_tls_dir"):
        assert not mon.file(values[var]).exists, values[var]


# Refusal and idempotence (each runs ansible-playbook)


def test_a_second_run_changes_nothing():
    result = playbook("molecule/resources/absent.yml", limit=",".join(app_hosts()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert recap_changed(result.stdout) == dict.fromkeys(app_hosts(), 0), result.stdout
