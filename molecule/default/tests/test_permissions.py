"""docs/permissions.md against the app host: every row's owner, group and mode, and who may write.

Paths, accounts and modes in the table are the variables they come from,
resolved from deployed-vars.json (custom_site runs this with other values).
What root, cron, systemd or the app runs (guard: yes) must not be writable by
the app account or the monitoring account, nor may any directory above it.
"""

import json
import os
import re
import shlex
import sys

import jinja2
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testlib"))
from pqtest import PROJECT_DIR, V, app_user, host, monitor_user, run_job  # noqa: E402

APP = host("app")
VARS = V("app")
TABLE = os.path.join(PROJECT_DIR, "docs", "permissions.md")
ACCOUNTS = sorted({app_user(), monitor_user()})

ENV = jinja2.Environment(undefined=jinja2.StrictUndefined)
ENV.filters["dirname"] = os.path.dirname


def _cell(text):
    text = text.strip().replace("\\|", "|")
    return text[1:-1] if text.startswith("`") and text.endswith("`") else text


def table_rows():
    rows, header = [], None
    with open(TABLE, encoding="utf-8") as handle:
        for line in handle.read().splitlines():
            if not line.startswith("|"):
                if header is not None:
                    break
                continue
            cells = [_cell(c) for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if header is None:
                header = cells
            elif not set("".join(cells)) <= set("- "):
                rows.append(dict(zip(header, cells, strict=True)))
    return rows


def resolve(row):
    """The row with this host's values: path, owner, group and mode (bits, and whether at most)."""
    out = {k: ENV.from_string(v).render(VARS) if "{{" in v else v for k, v in row.items()}
    mode = out["mode"]
    out["at_most"] = mode.startswith("<=")
    out["bits"] = int(mode.lstrip("<="), 8)
    return out


# Rows of playbooks/logforward.yml stay out: site.yml, which the scenarios run, does not deploy them.
ROWS = [resolve(row) for row in table_rows() if row["when"] != "logforward.yml"]

# Runs on the host as root: each row's matches with their stat, and for guarded ones each
# directory above, with whether an account may write there (owner, group and other bits).
PROBE = r"""
import glob, grp, json, os, pwd, stat, sys
rows, accounts = json.loads(sys.argv[1])
ids = {}
for name in accounts:
    entry = pwd.getpwnam(name)
    ids[name] = (entry.pw_uid, set(os.getgrouplist(name, entry.pw_gid)))
def info(path):
    st = os.lstat(path)
    writers = [n for n, (uid, gids) in ids.items()
               if (st.st_uid == uid and st.st_mode & 0o200) or (st.st_gid in gids and st.st_mode & 0o020)
               or st.st_mode & 0o002]
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return {"path": path, "dir": stat.S_ISDIR(st.st_mode), "link": stat.S_ISLNK(st.st_mode),
            "owner": owner, "group": group, "mode": stat.S_IMODE(st.st_mode), "writers": writers}
out = []
for row in rows:
    pattern = row["path"]
    if row["kind"] in ("file", "dir"):
        paths = [pattern] if os.path.lexists(pattern) else []
    else:
        paths = sorted(set(glob.glob(pattern.rstrip("/"), recursive=True)) - {pattern.split("*")[0].rstrip("/")})
        paths = [p for p in paths if os.path.isdir(p) == (row["kind"] == "dirs")]
    found = []
    for path in paths:
        entry = info(path)
        if row["guard"] == "yes":
            parents, parent = [], os.path.dirname(path)
            while True:
                parents.append(info(parent))
                if parent == "/":
                    break
                parent = os.path.dirname(parent)
            entry["parents"] = parents
        found.append(entry)
    out.append(found)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def found():
    """Per row (in table order), what the host has, once every file written "after a run" was written."""
    if VARS.get("peerquest_monitors_integrity_host") == VARS["inventory_hostname"]:
        # The audit's result file exists once the integrity job ran (it alerts on issues; either way it writes).
        run_job("integrity")
    argument = json.dumps([ROWS, ACCOUNTS])
    output = APP.check_output(f"python3 -c {shlex.quote(PROBE)} {shlex.quote(argument)}")
    return dict(zip([row["path"] for row in ROWS], json.loads(output), strict=True))


def _label(row):
    return row["path"]


def test_the_table_resolves_for_this_host():
    assert len(ROWS) > 20
    for row in ROWS:
        assert row["path"].startswith("/") and "{{" not in json.dumps(row), row


@pytest.mark.parametrize("row", ROWS, ids=_label)
def test_row_matches_the_host(row, found):
    entries = found[row["path"]]
    if row["kind"] in ("file", "dir") and not entries:
        if (
            row["when"] == "integrity host"
            and VARS.get("peerquest_monitors_integrity_host") != VARS["inventory_hostname"]
        ):
            pytest.skip("only on the integrity host")
        pytest.fail(f"{row['path']} is missing")
    for entry in entries:
        assert not entry["link"], f"{entry['path']} is a symlink"
        assert entry["dir"] == (row["kind"] in ("dir", "dirs")), entry
        assert (entry["owner"], entry["group"]) == (row["owner"], row["group"]), entry
        if row["at_most"]:
            assert entry["mode"] & ~row["bits"] == 0, f"{entry['path']}: {entry['mode']:04o} exceeds {row['mode']}"
        else:
            assert entry["mode"] == row["bits"], f"{entry['path']}: {entry['mode']:04o}, the table says {row['mode']}"


def test_nothing_guarded_is_writable_by_the_app_or_monitoring_account(found):
    writable = []
    checked = 0
    for row in ROWS:
        if row["guard"] != "yes":
            continue
        for entry in found[row["path"]]:
            checked += 1
            for item in [entry, *entry["parents"]]:
                if item["writers"]:
                    writable.append(
                        f"{item['path']} ({item['owner']}:{item['group']} {item['mode']:04o}) by {item['writers']}"
                    )
    assert checked > 20, "the guarded rows matched almost nothing on the host"
    assert not sorted(set(writable)), "\n".join(sorted(set(writable)))


def test_what_cron_and_systemd_run_is_guarded(found):
    """Every program the cron file and the follower unit name is one of the table's guarded paths."""
    guarded = {entry["path"] for row in ROWS if row["guard"] == "yes" for entry in found[row["path"]]}
    cron = APP.file("/etc/cron.d/peerquest-monitoring").content_string
    unit = APP.file("/etc/systemd/system/peerquest-monitor-follow.service").content_string
    programs = set()
    for line in cron.splitlines():
        fields = line.split()
        if len(fields) > 6 and not line.startswith("#") and "=" not in fields[0]:
            # minute hour day month weekday user flock -n -E 98 LOCK COMMAND ...
            command = fields[6:]
            if command[0].endswith("/flock"):
                command = command[5:]
            programs.add(command[0])
    programs.update(m.split()[0] for m in re.findall(r"^ExecStart=(.+)$", unit, re.M))
    assert programs, (cron, unit)
    assert programs <= guarded, sorted(programs - guarded)
