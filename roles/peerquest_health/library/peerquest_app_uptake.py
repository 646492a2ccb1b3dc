#!/usr/bin/python
"""Ansible module: what the running PeerQuest app has taken up of the deployed packages.

Read-only. Looks at the app's service from outside, so it needs neither the
app's settings module nor its secrets. Run it as the app's account: a process's
open files and environment are readable by its own user (root without
CAP_SYS_PTRACE, as in a container, is refused).

- PYTHONPATH: the environment of the unit's main process names the ops python dir;
- LOGGING: a process of the unit holds one of the deployed log files open
  (the deployed handlers open their files when Django configures logging);
- URLs: /health/quick/ answers something other than 404, sent with the Host
  header the app accepts.
"""

import http.client
import os
import subprocess
import time
import urllib.parse

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: peerquest_app_uptake
short_description: Report which deployed PeerQuest Ops packages the running app has taken up
options:
  service: {type: str, required: true, description: systemd unit of the app}
  ops_python_dir: {type: path, required: true, description: directory that must be on the app's PYTHONPATH}
  log_files: {type: list, elements: path, default: [], description: files the deployed LOGGING writes}
  quick_url: {type: str, required: true, description: URL of /health/quick/ on the host}
  http_host: {type: str, default: "", description: Host header to send}
  wait: {type: int, default: 60, description: seconds to wait for the app to answer HTTP at all}
"""


def unit_pids(service):
    """The unit's main process and its descendants (gunicorn's workers)."""
    main = subprocess.run(
        ["systemctl", "show", "-p", "MainPID", "--value", service], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not main.isdigit() or main == "0":
        return []
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                # The command name may hold spaces: the parent pid follows its closing ")".
                parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    pids = [int(main)]
    for pid in pids:
        pids += [child for child, parent in parents.items() if parent == pid]
    return pids


def environ_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            items = handle.read().split(b"\0")
    except OSError:
        return {}
    env = {}
    for item in items:
        key, sep, value = item.decode("utf-8", "replace").partition("=")
        if sep:
            env[key] = value
    return env


def open_files(pids):
    found = set()
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                found.add(os.readlink(os.path.join(fd_dir, name)))
            except OSError:
                continue
    return found


def probe(url, http_host, timeout=5):
    """(status, error) of a GET; status None when nothing answered."""
    parts = urllib.parse.urlsplit(url)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path or "/", headers={"Host": http_host or parts.netloc})
        return conn.getresponse().status, None
    except OSError as exc:
        return None, str(exc)
    finally:
        conn.close()


def main():
    module = AnsibleModule(
        argument_spec={
            "service": {"type": "str", "required": True},
            "ops_python_dir": {"type": "path", "required": True},
            "log_files": {"type": "list", "elements": "path", "default": []},
            "quick_url": {"type": "str", "required": True},
            "http_host": {"type": "str", "default": ""},
            "wait": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    p = module.params
    deadline = time.monotonic() + p["wait"]
    status, error = probe(p["quick_url"], p["http_host"])
    # Workers may still be starting after a reload: wait for any HTTP answer.
    while (status is None or status == 502) and time.monotonic() < deadline:
        time.sleep(1)
        status, error = probe(p["quick_url"], p["http_host"])
    pids = unit_pids(p["service"])
    env = environ_of(pids[0]) if pids else {}
    pythonpath = [d.rstrip("/") for d in env.get("PYTHONPATH", "").split(":") if d]
    logs = {os.path.realpath(f) for f in p["log_files"]}
    logging_taken = bool(logs & open_files(pids))
    module.exit_json(
        changed=False,
        running=bool(pids),
        pythonpath=p["ops_python_dir"].rstrip("/") in pythonpath,
        logging=logging_taken,
        urls=status is not None and status != 404,
        quick_status=status,
        quick_error=error,
    )


if __name__ == "__main__":
    main()
