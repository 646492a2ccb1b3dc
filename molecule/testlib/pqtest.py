"""Helpers for the Molecule verify steps (testinfra over SSH, as Ansible reaches the hosts).

Every value a test needs (paths, accounts, URLs, ports, recipients,
thresholds, secrets) comes from what the scenario deployed:
$MOLECULE_EPHEMERAL_DIRECTORY/deployed-vars.json, written by the scenario's
side_effect step (molecule/resources/export-vars.yml) and read once, here, at
import. A host is named by role ("app": the first host of group
peerquest_app, "sink": the first of peerquest_sink) or by inventory name; the
container has the inventory name.
"""

import contextlib
import functools
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from urllib.parse import urlsplit

import pytest
import testinfra
import testinfra.backend.ssh
import yaml

SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "phase1")
PROJECT_DIR = os.environ.get(
    "MOLECULE_PROJECT_DIRECTORY", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
)
EPHEMERAL_DIR = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
DEPLOYED_VARS_FILE = os.path.join(EPHEMERAL_DIR, "deployed-vars.json")

# Group of each role name host() accepts.
ROLE_GROUPS = {"app": "peerquest_app", "sink": "peerquest_sink", "mon": "peerquest_monitoring"}
# Alert channel -> the variable holding its URL (the capture sink's hook name is its first path segment).
CHANNEL_URL_VARS = {
    "slack": "peerquest_alerting_slack_webhook_url",
    "discord": "peerquest_alerting_discord_webhook_url",
    "webhook": "peerquest_alerting_webhook_url",
}
# The capture sink's HTTP port when no webhook URL names it (molecule/resources/sink).
SINK_DEFAULT_HTTP_PORT = 8025


def _load_deployed():
    if not EPHEMERAL_DIR:
        raise RuntimeError("MOLECULE_EPHEMERAL_DIRECTORY is not set: run the tests through `molecule verify`")
    try:
        with open(DEPLOYED_VARS_FILE, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise RuntimeError(
            f"{DEPLOYED_VARS_FILE} is missing: run `molecule side-effect -s {SCENARIO}` "
            "(molecule/resources/export-vars.yml) after converge and before verify"
        ) from None


DEPLOYED = _load_deployed()
HOSTS = DEPLOYED["hosts"]
GROUPS = DEPLOYED["groups"]


def _no_log_variables():
    """Names of the options the roles' argument specs mark no_log: the secrets."""
    names = set()
    for path in sorted(glob.glob(os.path.join(PROJECT_DIR, "roles", "*", "meta", "argument_specs.yml"))):
        with open(path, encoding="utf-8") as handle:
            specs = yaml.safe_load(handle) or {}
        for entry in (specs.get("argument_specs") or {}).values():
            for name, option in ((entry or {}).get("options") or {}).items():
                if isinstance(option, dict) and option.get("no_log"):
                    names.add(name)
    return sorted(names)


NO_LOG_VARIABLES = _no_log_variables()


# ------------------------------------------------------------------ hosts


def host_name(role="app"):
    """Inventory name (= container name) of a role ("app", "sink") or of an inventory name."""
    if role in HOSTS:
        return role
    group = ROLE_GROUPS.get(role, role)
    members = GROUPS.get(group) or []
    if not members:
        raise KeyError(f"no host for {role!r}: group {group!r} is empty or missing in {DEPLOYED_VARS_FILE}")
    return members[0]


def app_hosts():
    """Inventory names of every app host (group peerquest_app), in inventory order."""
    return list(GROUPS.get("peerquest_app", []))


def sink_hosts():
    return list(GROUPS.get("peerquest_sink", []))


_HOSTS_BY_ID = {}


# Written by molecule/resources/connect.yml (prepare): addresses, key, known_hosts, one
# multiplexed connection per host (a command costs milliseconds, not a podman exec).
SSH_CONFIG = os.path.join(EPHEMERAL_DIR, "ssh", "ssh_config")


# On a loaded machine a multiplexed SSH master now and then drops a new session before it
# opens ("mux_client_request_session: read from master failed", then "Failed to connect to new
# control master"): the command never ran, so it is run again on a fresh connection.
_MUX_FAILURES = ("mux_client_request_session", "Failed to connect to new control master")
_run_ssh = testinfra.backend.ssh.SshBackend.run_ssh


def _run_ssh_again_after_a_mux_failure(self, command):
    for attempt in range(4):
        try:
            return _run_ssh(self, command)
        except RuntimeError as exc:
            if attempt == 3 or not any(text in str(exc) for text in _MUX_FAILURES):
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


testinfra.backend.ssh.SshBackend.run_ssh = _run_ssh_again_after_a_mux_failure


@functools.cache
def _testinfra_host(name):
    # A scenario that keeps Molecule's podman connection has no ssh_config.
    if os.path.exists(SSH_CONFIG):
        target = testinfra.get_host(f"ssh://{name}", ssh_config=SSH_CONFIG)
    else:
        target = testinfra.get_host(f"podman://{name}")
    _HOSTS_BY_ID[id(target)] = name
    return target


def restart(role="app"):
    """Restart a host's container; point SSH at the address it comes back on.

    The container may get another address, and the old multiplexed connection
    is dead: the host's HostName line in ssh_config is rewritten and the stale
    master told to exit (known_hosts is keyed by name, so the key still holds).
    """
    name = host_name(role)
    subprocess.run(["podman", "restart", "-t", "5", name], check=True, capture_output=True)
    if not os.path.exists(SSH_CONFIG):
        return  # reached with podman exec: nothing to point anywhere
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
    inspect = subprocess.run(["podman", "inspect", "--format", fmt, name], check=True, capture_output=True, text=True)
    address = inspect.stdout.split()[0]
    with open(SSH_CONFIG, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    current = None
    for i, line in enumerate(lines):
        words = line.split()
        if words[:1] == ["Host"]:
            current = words[1]
        elif current == name and words[:1] == ["HostName"]:
            lines[i] = f"  HostName {address}"
    with open(SSH_CONFIG, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    subprocess.run(["ssh", "-F", SSH_CONFIG, "-O", "exit", name], capture_output=True, check=False)
    # testinfra raises on a refused connection: wait until the booting host's sshd answers.
    probe = ["ssh", "-F", SSH_CONFIG, "-o", "ConnectTimeout=3", name, "true"]
    wait_for(
        lambda: subprocess.run(probe, capture_output=True, check=False).returncode == 0,
        timeout=120,
        what=f"SSH to {name}",
    )


def host(role="app"):
    """The testinfra host of a role or inventory name."""
    return _testinfra_host(host_name(role))


def _name(target):
    """Inventory name of a role, an inventory name or a host() object."""
    if isinstance(target, str):
        return host_name(target)
    try:
        return _HOSTS_BY_ID[id(target)]
    except KeyError:
        raise ValueError(f"{target!r} did not come from pqtest.host()") from None


def V(host_role="app"):  # noqa: N802 - short on purpose: V()["peerquest_logdir_path"]
    """Every peerquest_* variable of a host as deployed (resolved), plus inventory_hostname."""
    return HOSTS[_name(host_role)]


# ------------------------------------------------------------ derived values


def log_dir(h="app"):
    return V(h)["peerquest_logdir_path"]


def log_group(h="app"):
    return V(h)["peerquest_logdir_group"]


def log_path(name, h="app"):
    return f"{log_dir(h)}/{name}"


def monitoring_log_dir(h="app"):
    return V(h)["peerquest_alerting_log_dir"]


def monitoring_log(h="app"):
    return f"{monitoring_log_dir(h)}/monitoring.log"


def app_user(h="app"):
    return V(h)["peerquest_app_user"]


def app_group(h="app"):
    return V(h)["peerquest_app_group"]


def app_dir(h="app"):
    return V(h)["peerquest_app_dir"]


def app_python(h="app"):
    return V(h)["peerquest_app_python"]


def app_service(h="app"):
    return V(h)["peerquest_app_service"]


def alert_user(h="app"):
    return V(h)["peerquest_alerting_user"]


def monitor_user(h="app"):
    return V(h)["peerquest_monitors_user"]


def alert_command(h="app"):
    return V(h)["peerquest_alerting_command_path"]


def monitor_command(h="app"):
    return V(h)["peerquest_monitors_command_path"]


def alert_cmd(h="app"):
    """Shell words running the alert command as the alert account."""
    return f"sudo -u {shlex.quote(alert_user(h))} {shlex.quote(alert_command(h))}"


def monitor_cmd(h="app"):
    """Shell words running the monitor command as the monitoring account."""
    return f"sudo -u {shlex.quote(monitor_user(h))} {shlex.quote(monitor_command(h))}"


def ops_config_dir(h="app"):
    return V(h)["peerquest_app_ops_config_dir"]


def ops_python_dir(h="app"):
    return V(h)["peerquest_app_ops_python_dir"]


def ops_lib_dir(h="app"):
    return V(h)["peerquest_app_ops_lib_dir"]


def ops_state_dir(h="app"):
    return V(h)["peerquest_app_ops_state_dir"]


def integrity_result_file(h="app"):
    return V(h)["peerquest_app_integrity_result_file"]


def monitors_state_dir(h="app"):
    return V(h)["peerquest_monitors_state_dir"]


def lock_dir(h="app"):
    return f"{monitors_state_dir(h)}/locks"


def alert_state_dir(h="app"):
    return V(h)["peerquest_alerting_state_dir"]


def spool_dir(h="app"):
    return V(h)["peerquest_alerting_spool_dir"]


def app_url(h="app"):
    """Base URL where the app answers on its own host (no trailing slash)."""
    return V(h)["peerquest_app_local_url"].rstrip("/")


def http_host(h="app"):
    """Host header every request to the app sends."""
    return V(h)["peerquest_app_http_host"] or urlsplit(app_url(h)).netloc


def subject(severity, h="app"):
    return V(h)["peerquest_alerting_subject"].format(severity=severity)


def recipients(severity, h="app"):
    return list((V(h)["peerquest_alerting_email_recipients"] or {}).get(severity) or [])


def routes(severity, h="app"):
    return list((V(h)["peerquest_alerting_routes"] or {}).get(severity) or [])


def hook_name(channel, h="app"):
    """The capture sink's name for a webhook channel: the first path segment after /hook/."""
    parts = urlsplit(V(h)[CHANNEL_URL_VARS[channel]]).path.strip("/").split("/")
    assert len(parts) >= 2 and parts[0] == "hook", f"{CHANNEL_URL_VARS[channel]} does not point at the capture sink"
    return parts[1]


def sink_url(h="app"):
    """Base URL of the capture sink's HTTP side, as seen on the sink itself."""
    for var in CHANNEL_URL_VARS.values():
        parts = urlsplit(V(h).get(var) or "")
        if parts.path.startswith("/hook/") and parts.port:
            return f"http://127.0.0.1:{parts.port}"
    return f"http://127.0.0.1:{SINK_DEFAULT_HTTP_PORT}"


def smtp_port(h="app"):
    return int(V(h)["peerquest_alerting_smtp_port"])


LEVELS = {"NOTSET": 0, "DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def _merged(base, overrides):
    """base with overrides merged in recursively (Ansible's combine(recursive=true))."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _present(specs):
    return {name: spec for name, spec in specs.items() if (spec or {}).get("state", "present") != "absent"}


def logging_handlers(h="app"):
    """The LOGGING handlers the inventory asks for (overrides merged, absent ones dropped)."""
    v = V(h)
    return _present(_merged(v["peerquest_logging_handlers"], v.get("peerquest_logging_handlers_overrides") or {}))


def logging_loggers(h="app"):
    v = V(h)
    return _present(_merged(v["peerquest_logging_loggers"], v.get("peerquest_logging_loggers_overrides") or {}))


def log_files(h="app"):
    """Names (relative to the log directory) of every file a handler writes, sorted."""
    return sorted({spec["filename"] for spec in logging_handlers(h).values() if spec.get("filename")})


def _level(spec, default="NOTSET"):
    return LEVELS[str((spec or {}).get("level", default)).upper()]


def files_receiving(logger, level, h="app"):
    """The log files a record of level from logger must land in, by Python's logging rules on the
    deployed configuration: the logger's level, its handlers, then (when it propagates) the root's
    handlers; every handler filters by its own level. A logger that does not propagate also has
    peerquest_logging_critical_handler (the contract: every CRITICAL record reaches that file)."""
    handlers = logging_handlers(h)
    root = V(h).get("peerquest_logging_root") or {}
    critical = V(h).get("peerquest_logging_critical_handler") or ""
    spec = logging_loggers(h).get(logger)
    number = LEVELS[level]
    names = []
    propagate = True
    if spec is not None:
        effective = _level(spec) or _level(root, "WARNING")
        if effective > number:
            return []
        names += list(spec.get("handlers", []))
        propagate = spec.get("propagate", True) is not False
        if not propagate and critical in handlers and critical not in names:
            names.append(critical)
    elif _level(root, "WARNING") > number:
        return []
    if propagate:
        names += list(root.get("handlers", []))
    return sorted(
        {
            handlers[name]["filename"]
            for name in names
            if name in handlers and handlers[name].get("filename") and _level(handlers[name]) <= number
        }
    )


def file_handler(filename, h="app"):
    """The handler spec writing a log file (its level, formatter ...)."""
    return next(spec for spec in logging_handlers(h).values() if spec.get("filename") == filename)


def retention_days(filename, h="app"):
    """Days a log file in the log directory is kept ("forever" or an int), as the policy says."""
    v = V(h)
    path = log_path(filename, h)
    per_file = v.get("peerquest_logrotate_file_retention") or {}
    days = per_file.get(path, per_file.get(filename))
    if days is None:
        level = str(file_handler(filename, h).get("level", "NOTSET")).upper()
        days = v["peerquest_logrotate_retention_days"][level]
    return days if days == "forever" else int(days)


def secrets(h="app"):
    """The deployed values of every no_log variable (vault-backed), with the secret parts of URLs."""
    values = set()
    for name in NO_LOG_VARIABLES:
        value = V(h).get(name)
        if not isinstance(value, str) or len(value) < 4:
            continue
        if "\n" in value.strip():
            # A PEM key: grep -F takes one pattern per line (an empty one matches anything),
            # so look for each line of key material.
            values.update(x.strip() for x in value.splitlines() if len(x.strip()) >= 16 and not x.startswith("-----"))
            continue
        values.add(value)
        parts = urlsplit(value)
        if parts.scheme and parts.netloc:
            values.update(x for x in (parts.path, parts.query, parts.password) if x and len(x) >= 8)
    return sorted(values)


# ------------------------------------------------------------------- HTTP


def marker(prefix="pq"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def http(target, method, url, data=None, headers=None, timeout=10):
    """An HTTP request made inside a container with curl: (status, body)."""
    cmd = ["curl", "-sS", "-m", str(timeout), "-X", method, "-o", "/dev/stdout", "-w", "\n%{http_code}"]
    for key, value in (headers or {}).items():
        cmd += ["-H", f"{key}: {value}"]
    for key, value in (data or {}).items():
        cmd += ["--data-urlencode", f"{key}={value}"]
    cmd.append(url)
    out = target.check_output(shlex.join(cmd))
    body, _, status = out.rpartition("\n")
    return int(status), body


def http_json(target, method, url, **kwargs):
    status, body = http(target, method, url, **kwargs)
    return status, json.loads(body) if body else None


def app_http(method, path, h="app", headers=None, **kwargs):
    """A request to the app on its own host, at peerquest_app_local_url, with the deployed Host header."""
    headers = {"Host": http_host(h), **(headers or {})}
    return http(host(_name(h)), method, app_url(h) + path, headers=headers, **kwargs)


def app_is_up(h="app"):
    """Whether the app answers /health/quick/ with 200 now; a refused connection (still starting) is False."""
    url = app_url(h) + "/health/quick/"
    cmd = ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Host: {http_host(h)}", url]
    return host(_name(h)).run(shlex.join(cmd)).stdout.strip() == "200"


def app_json(method, path, h="app", **kwargs):
    status, body = app_http(method, path, h=h, **kwargs)
    return status, json.loads(body) if body else None


def app_curl(path, h="app"):
    """curl arguments (shell words) for a request to the app, Host header included."""
    return f"-H {shlex.quote('Host: ' + http_host(h))} {shlex.quote(app_url(h) + path)}"


def log_through_django(h, logger, level, message, count=1):
    """Make the running gunicorn workers log, as the real app would."""
    status, body = app_http(
        "POST",
        "/standin/log/",
        h=_name(h),
        data={"logger": logger, "level": level, "message": message, "count": count},
    )
    assert status == 204, body


# ------------------------------------------------------------- the sink


def captured_mail(sink="sink"):
    status, mails = http_json(host(_name(sink)), "GET", f"{sink_url()}/_captured/mail")
    assert status == 200
    return mails


def captured_hooks(channel, sink="sink"):
    status, items = http_json(host(_name(sink)), "GET", f"{sink_url()}/_captured/hooks/{hook_name(channel)}")
    assert status == 200
    return items


# ------------------------------------------------------------ host helpers


def file_lines(target, path):
    result = target.run(f"cat {shlex.quote(path)}")
    return result.stdout.splitlines() if result.rc == 0 else []


def wait_for(predicate, timeout=30, interval=0.5, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_spool_due(app="app"):
    """Pull every pending delivery's next attempt to now, instead of waiting out the backoff."""
    host(_name(app)).check_output(
        f'for f in {shlex.quote(spool_dir(app))}/*.json; do [ -e "$f" ] || continue; '
        'sed -i -E \'s/"next_attempt": [0-9.]+/"next_attempt": 0/\' "$f"; done'
    )


def spooled(app="app"):
    return host(_name(app)).check_output(f"ls {shlex.quote(spool_dir(app))}").split()


def output(target, command):
    """Standard output of a command as UTF-8 text, whatever the container's locale."""
    result = target.run(command)
    assert result.rc == 0, result.stderr
    return result.stdout_bytes.decode("utf-8", "replace")


def line_count(target, path):
    """Lines in a file now (0 when it is missing): where to start reading what comes next."""
    result = target.run(f"wc -l < {shlex.quote(path)}")
    return int(result.stdout.strip() or 0) if result.rc == 0 else 0


def lines_after(target, path, count):
    """The lines of a file after its first count lines."""
    return output(target, f"tail -n +{int(count) + 1} {shlex.quote(path)}").splitlines()


# Runs on the app host as root: manage.py as the app's unit runs the app (its
# account, directory, Environment= and EnvironmentFile=, read from systemd now).
# Values travel in the environment only (--setenv NAME takes the value from
# systemd-run's own environment), never on a command line.
_MANAGE = r"""
import json, os, shlex, subprocess, sys
spec = json.loads(sys.argv[1])
shown = subprocess.run(
    ["systemctl", "show", "-p", "Environment", "-p", "EnvironmentFiles", "--", spec["unit"]],
    capture_output=True, text=True, check=True,
).stdout
env, files = {}, []
for line in shown.splitlines():
    key, _, value = line.partition("=")
    if key == "Environment":
        for item in shlex.split(value):
            name, sep, text = item.partition("=")
            if sep:
                env[name] = text
    elif key == "EnvironmentFiles" and value:
        path, _, flags = value.rpartition(" (")
        files.append(("-" if "ignore_errors=yes" in flags else "") + (path or value))
cmd = ["systemd-run", "--wait", "--pipe", "--quiet", "--collect", "--service-type=exec",
       "--uid=" + spec["user"], "--gid=" + spec["group"], "--working-directory=" + spec["dir"]]
cmd += ["--property=EnvironmentFile=" + path for path in files]
cmd += ["--setenv=" + name for name in sorted(env)]
cmd += ["--", spec["python"], "manage.py", *spec["args"]]
os.execvpe(cmd[0], cmd, {**os.environ, **env})
"""


def manage(h, *args, check=True):
    """Run the app's manage.py with args in the app's real environment; the command result."""
    name = _name(h)
    spec = {
        "unit": app_service(name),
        "user": app_user(name),
        "group": app_group(name),
        "dir": app_dir(name),
        "python": app_python(name),
        "args": list(args),
    }
    result = host(name).run(f"python3 -c {shlex.quote(_MANAGE)} {shlex.quote(json.dumps(spec))}")
    if check:
        assert result.rc == 0, f"manage.py {' '.join(args)} failed ({result.rc}): {result.stdout}{result.stderr}"
    return result


# ------------------------------------------- the sink, by what it received


def reset_sink(sink="sink"):
    """Forget every captured mail and hook request and every failure switch."""
    assert http(host(_name(sink)), "POST", f"{sink_url()}/_control/reset")[0] == 200


def mails_with(tag, sink="sink"):
    return [m for m in captured_mail(sink) if tag in m["body"]]


def hooks_with(channel, tag, sink="sink"):
    return [h for h in captured_hooks(channel, sink) if tag in json.dumps(h["body"])]


def delivered(channel, tag, sink="sink"):
    """The alerts a channel received carrying tag: mails or webhook requests. Alertmanager's notices
    that an alert ended (a check that recovered runs peerquest-alert --resolve) are not alerts."""
    records = mails_with(tag, sink) if channel == "email" else hooks_with(channel, tag, sink)
    return [r for r in records if not is_resolution(r)]


def delivered_text(record):
    """The text of a mail or webhook request a channel received."""
    return record["body"] if isinstance(record.get("body"), str) else json.dumps(record["body"])


def is_resolution(record):
    """Alertmanager's notice that an alert ended: its webhook payload's status, or the RESOLVED
    mark its PeerQuest template puts before the alert's summary (one alert a message: grouped by key)."""
    body = record.get("body")
    if isinstance(body, dict) and body.get("status") == "resolved":
        return True
    return "RESOLVED: " in delivered_text(record)


# --------------------------------------------------------- the monitors

# The schedule the monitors role installs (the path is the role's, not a variable).
CRON_FILE = "/etc/cron.d/peerquest-monitoring"


def cron_jobs(h="app"):
    """{job name: (five time fields, user, command as cron hands it to /bin/sh)} from the installed schedule."""
    jobs = {}
    locks = f"{lock_dir(h)}/"
    for line in host(_name(h)).file(CRON_FILE).content_string.splitlines():
        if line and not line.startswith("#") and not re.match(r"^[A-Z_]+=", line) and locks in line:
            fields = line.split(None, 6)
            name = line.split(locks, 1)[1].split(".lock", 1)[0]
            jobs[name] = (fields[:5], fields[5], fields[6].replace("\\%", "%"))
    return jobs


def run_job(name, h="app"):
    """Run a scheduled job once as cron would: its account, its line of the schedule (lock, wrapper,
    output appended to the monitoring log). The command result."""
    jobs = cron_jobs(h)
    assert name in jobs, f"no job {name!r} in {CRON_FILE} on {_name(h)}: {sorted(jobs)}"
    _fields, user, command = jobs[name]
    return host(_name(h)).run(f"sudo -u {shlex.quote(user)} sh -c {shlex.quote(command)}")


def run_logged_job(name, h="app"):
    """Run a job as cron would; its own completion line in the monitoring log (proof it did its work)."""
    target, log = host(_name(h)), monitoring_log(h)
    before = line_count(target, log)
    result = run_job(name, h)
    assert result.rc == 0, result.stdout + result.stderr
    done = [x for x in lines_after(target, log, before) if f" peerquest-monitor {name}: " in x]
    assert done, f"{name} wrote no completion line to {log}"
    return done[-1]


def restart_scan_at_end_of_log(name, h="app"):
    """A scan job's state starts at the end of the application log with empty windows: only lines
    logged from now on count (earlier tests and earlier verifies logged too)."""
    code = (
        "import json, os, sys; st = os.stat(sys.argv[1]); "
        "json.dump({'position': {'inode': st.st_ino, 'offset': st.st_size}, 'buckets': {}, 'baselines': {}, "
        "'values': {}}, open(sys.argv[2], 'w'))"
    )
    state = f"{V(h)['peerquest_monitors_state_dir']}/{name}.json"
    as_monitor = f"sudo -u {shlex.quote(monitor_user(h))}"
    app_log = V(h)["peerquest_monitors_app_log"]
    host(_name(h)).check_output(
        f"{as_monitor} python3 -c {shlex.quote(code)} {shlex.quote(app_log)} {shlex.quote(state)}"
    )


def app_log_writer(level, h="app"):
    """A logger whose records of level reach the application log the scans read."""
    name = os.path.relpath(V(h)["peerquest_monitors_app_log"], log_dir(h))
    for logger in ("applications", "quests", "django.request"):
        if name in files_receiving(logger, level, h):
            return logger
    pytest.skip(f"no stand-in logger writes {level} to {name} in this inventory")


def monitors_config(h="app"):
    """The monitors' settings as the role rendered them (read as root: they hold the health token)."""
    return json.loads(host(_name(h)).check_output(f"cat {shlex.quote(V(h)['peerquest_monitors_config_path'])}"))


def health_auth(h="app"):
    """Headers that open /health/: the deployed token."""
    token = V(h)["peerquest_monitors_health_token"]
    return {"Authorization": f"Bearer {token}"} if token else {}


@contextlib.contextmanager
def cron_paused():
    """Scheduled runs would race a test for new log lines and alerts: cron stopped on every app host."""
    targets = [host(name) for name in app_hosts()]
    for target in targets:
        target.check_output("systemctl stop cron.service")
    try:
        yield
    finally:
        for target in targets:
            target.check_output("systemctl start cron.service")


def forget_dedup(h="app"):
    """Drop the alert command's dedup memory, so an alert an earlier run sent is not suppressed now."""
    host(_name(h)).check_output(f"rm -f {shlex.quote(alert_state_dir(h))}/*.json")


ALERT_EVENT = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d peerquest-alert (?P<level>[A-Z]+) (?P<event>.+?) "
    r"severity=(?P<severity>\S+) key=.* channel=(?P<channel>\S+)"
)


def alert_events(tag, h="app"):
    """(event, channel) of every peerquest-alert event in the monitoring log about tag, in order."""
    events = []
    for line in output(host(_name(h)), f"cat {shlex.quote(monitoring_log(h))}").splitlines():
        match = ALERT_EVENT.match(line)
        if match and tag in line:
            events.append((match["event"], match["channel"]))
    return events


def app_database(h="app"):
    """The app's SQLite file, as its own settings name it (read in the app's environment)."""
    code = "from django.conf import settings; print(settings.DATABASES['default']['NAME'])"
    path = manage(h, "shell", "-c", code).stdout.strip().splitlines()[-1]
    if not path.startswith("/"):
        path = f"{app_dir(h)}/{path}"
    assert host(_name(h)).file(path).is_file, f"the app's database {path} is not a file (not SQLite?)"
    return path


# ------------------------------------------------------- delivery path

# Where Alertmanager runs, peerquest-alert posts there and Alertmanager sends (its
# message format, its grouping: a key stays one alert until it resolves). The
# tests of peerquest-alert's own delivery (formats, routes, dedup window, spool
# and retry per channel, per-channel events) run where it sends itself: the
# default scenario. tests/test_phase3.py covers the Alertmanager path.
VIA_ALERTMANAGER = bool(
    HOSTS[host_name("app")].get("peerquest_alerting_via_alertmanager")
    and HOSTS[host_name("app")].get("peerquest_alerting_alertmanager_urls")
)


def direct_delivery(test):
    """Skipped where Alertmanager delivers; marked, so the default scenario can select these tests."""
    skip = pytest.mark.skipif(
        VIA_ALERTMANAGER, reason="peerquest-alert delivers through Alertmanager here (tests/test_phase3.py covers it)"
    )
    return pytest.mark.direct_delivery(skip(test))


# ------------------------------------- host faults (disk full, log directory gone, follower dead)

# A small filesystem every container has: /dev/shm, the runtime's own tmpfs (64 MiB under podman
# and docker). The disk-full tests move directories onto it and fill it; the platform grants no
# extra mount or capability for that.
SMALL_FS = "/dev/shm"
# Filled only when it is small: filling a tmpfs costs that much memory.
SMALL_FS_MAX_MB = 256


def host_now(h="app"):
    """The host's clock (epoch seconds): where to start reading its journal."""
    return int(host(_name(h)).check_output("date +%s"))


def journal_since(unit, since, h="app"):
    """What a unit wrote to the journal since an epoch of the host's clock (stdout and stderr)."""
    return output(host(_name(h)), f"journalctl -q -o cat -u {shlex.quote(unit)} --since @{int(since)} --no-pager")


def follow_unit(h="app"):
    """The CRITICAL follower's unit as the monitors' settings name it (None when the follower is off)."""
    follow = monitors_config(h).get("follow") or {}
    return follow.get("unit") if follow.get("enabled") else None


@contextlib.contextmanager
def follower_stopped(h="app"):
    """The CRITICAL follower stopped (it saves its cursor on SIGTERM), started again on exit."""
    unit = follow_unit(h)
    target = host(_name(h))
    if unit:
        target.check_output(f"systemctl stop {shlex.quote(unit)}")
    try:
        yield unit
    finally:
        if unit:
            target.check_output(f"systemctl start {shlex.quote(unit)}")


@contextlib.contextmanager
def on_small_filesystem(paths, h="app"):
    """Each directory of paths replaced by an empty one on SMALL_FS (same owner, group and mode; the
    path becomes a symlink to it, so every program reaching it by name writes there). Yields the
    scratch directory on SMALL_FS; on exit the original directories come back as they were (same
    inodes: readers keyed by inode see no rotation) and the scratch directory goes."""
    target = host(_name(h))
    free_mb = int(target.check_output(f"df -Pm {SMALL_FS} | awk 'NR==2 {{print $4}}'"))
    if free_mb > SMALL_FS_MAX_MB:
        pytest.skip(f"{SMALL_FS} has {free_mb} MiB free: too much memory to fill for a disk-full test")
    scratch = f"{SMALL_FS}/{marker('small')}"
    target.check_output(f"install -d -m 0755 {scratch}")
    moved = []
    try:
        for index, path in enumerate(paths):
            saved, there = f"{path}.pq-saved", f"{scratch}/{index}"
            owner = target.check_output(f"stat -c '%U %G %a' {shlex.quote(path)}").split()
            target.check_output(f"install -d -o {owner[0]} -g {owner[1]} -m {owner[2]} {there}")
            target.check_output(f"mv -T {shlex.quote(path)} {shlex.quote(saved)}")
            moved.append((path, saved))
            target.check_output(f"ln -sT {there} {shlex.quote(path)}")
        yield scratch
    finally:
        for path, saved in reversed(moved):
            target.run(f"rm -f {shlex.quote(path)}")
            target.check_output(f"mv -T {shlex.quote(saved)} {shlex.quote(path)}")
        target.run(f"rm -rf {scratch}")


def fill_filesystem(directory, h="app"):
    """Fill the filesystem holding directory to its last byte (files .pq-fill* in it); its free KiB after."""
    target = host(_name(h))
    where = shlex.quote(directory)
    target.run(f"dd if=/dev/zero of={where}/.pq-fill bs=1M 2>/dev/null; dd if=/dev/zero of={where}/.pq-fill2 bs=4k")
    return int(target.check_output(f"df -Pk {where} | awk 'NR==2 {{print $4}}'"))


def free_filesystem(directory, h="app"):
    host(_name(h)).check_output(f"rm -f {shlex.quote(directory)}/.pq-fill*")


def _playbook_command():
    """ansible-playbook next to the Python running the tests (the project's .venv), else PATH's; and its
    environment: the scenario's ansible.cfg (inventory, settings, vault), the project's roles, plain text."""
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(PROJECT_DIR, "roles"))
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    if os.path.exists(os.path.join(EPHEMERAL_DIR, "ansible.cfg")):
        env["ANSIBLE_CONFIG"] = os.path.join(EPHEMERAL_DIR, "ansible.cfg")
    program = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    command = [program if os.path.exists(program) else "ansible-playbook"]
    return command + ["-i", os.path.join(EPHEMERAL_DIR, "inventory")], env


def run_playbook(path, extra=None, tags=None, limit=None):
    """ansible-playbook PATH (relative to the project) as the scenario runs it, on the app hosts given by
    limit (default: the first), with --tags and -e extra; the finished process."""
    command, env = _playbook_command()
    command += ["--limit", limit or _name("app")]
    if tags:
        command += ["--tags", tags]
    if extra:
        command += ["-e", json.dumps(extra)]
    return subprocess.run([*command, path], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False)


def apply_role(role, h="app"):
    """Run one role on one host as the phases' plays run it (become, the dependent outputs' wiring, the
    role's own checks first): what the next converge does with that role there, without the rest of
    site.yml. The scenario's own inventory, settings and vault; the finished process."""
    play = [
        {
            "name": f"Apply {role} again",
            "hosts": _name(h),
            "gather_facts": False,
            "become": True,
            "vars_files": [os.path.join(PROJECT_DIR, "playbooks", "vars", "dependent.yml")],
            # The roles every phase runs first: their defaults (the app's account, ...) in scope, no task run.
            "roles": [{"role": "peerquest_app", "when": False}, {"role": "peerquest_package", "when": False}, role],
        }
    ]
    command, env = _playbook_command()
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=EPHEMERAL_DIR or None) as playbook:
        yaml.safe_dump(play, playbook)
        playbook.flush()
        command.append(playbook.name)
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=PROJECT_DIR)
