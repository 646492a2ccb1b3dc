"""docs/permissions.md names every path the roles' tasks deploy, so it cannot silently fall behind.

The tasks' destinations are rendered the way the table writes them: a role
variable stays `{{ name }}`, a private one (vars/main.yml) is replaced by what
it stands for, a literal loop (also one over private lists of paths or names)
is expanded and a computed one becomes `*`. Tasks delegated to the controller
write there, not on a host: the table does not name their paths.
The host side (owner, group, mode, who may write) is
molecule/default/tests/test_permissions.py.
"""

import fnmatch
import os
import re
import types

import jinja2
import jinja2.nativetypes
import pytest
import yaml
from conftest import ROLES, ROOT

TABLE = ROOT / "docs" / "permissions.md"
WRITING_MODULES = ("copy", "template", "file", "lineinfile", "blockinfile", "assemble", "get_url", "unarchive")
KINDS = {"file", "dir", "files", "dirs"}
WHEN = {"always", "integrity host", "after a run", "logforward.yml"}


def _cell(text):
    text = text.strip().replace("\\|", "|")
    return text[1:-1] if text.startswith("`") and text.endswith("`") else text


def table_rows(text=None):
    """The table's rows as dicts keyed by its header."""
    lines = (text if text is not None else TABLE.read_text()).splitlines()
    rows, header = [], None
    for line in lines:
        if not line.startswith("|"):
            if header is not None:
                break  # one table: it ends at its first line that is not a row
            continue
        cells = [_cell(c) for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("- "):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


# ------------------------------------------------- what the tasks deploy


class Placeholder(jinja2.Undefined):
    """A role variable: renders as it is spelled in the table."""

    def __str__(self):
        return f"{{{{ {self._undefined_name} }}}}"


class Computed(str):
    """The item of a computed loop: '*', whatever attribute is asked for."""

    def __getattr__(self, name):
        return Computed("*")


def _dirname(value):
    if isinstance(value, Placeholder):
        return f"{{{{ {value._undefined_name} | dirname }}}}"
    return os.path.dirname(str(value))


ENV = jinja2.Environment(undefined=Placeholder)
ENV.filters["dirname"] = _dirname
# Renders a loop expression to the list itself (not its text).
NATIVE = jinja2.nativetypes.NativeEnvironment(undefined=Placeholder)
NATIVE.filters["dirname"] = _dirname


def _private_vars():
    """Each role's vars/main.yml entries, rendered as far as role variables allow."""
    found = {}
    for path in sorted(ROLES.glob("*/vars/main.yml")):
        for name, value in (yaml.safe_load(path.read_text()) or {}).items():
            if isinstance(value, str):
                try:
                    found[name] = ENV.from_string(value).render()
                except Exception:  # noqa: BLE001 - needs run-time data: whatever it is
                    found[name] = Computed("*")
            elif isinstance(value, list) and all(isinstance(i, str) for i in value):
                found[name] = value  # a literal list: its items render with the task's item
    return found


PRIVATE = _private_vars()
# Accounts a Debian package creates (prometheus), as the roles' vars/main.yml name them.
PACKAGE_ACCOUNTS = {
    value
    for name, value in PRIVATE.items()
    if re.fullmatch(r"_peerquest_\w+_(user|group)", name) and re.fullmatch(r"[a-z][a-z0-9_-]*", str(value))
}


def _render(value, item):
    if isinstance(value, dict):
        return {k: _render(v, item) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    return ENV.from_string(value).render(PRIVATE, item=item)


def _loop_items(loop):
    """The items of a loop as the table spells them; one Computed('*') when they are known only at run time."""
    if isinstance(loop, str):
        try:
            loop = NATIVE.from_string(loop).render(PRIVATE)
            loop = list(loop) if isinstance(loop, (list, tuple, types.GeneratorType)) else None
        except Exception:  # noqa: BLE001 - needs run-time data: whatever it is
            loop = None
        if not (isinstance(loop, list) and all(isinstance(i, str) for i in loop)):
            loop = None
    return [_render(i, None) for i in loop] if isinstance(loop, list) else [Computed("*")]


def _on_controller(task):
    return str(task.get("delegate_to", "")).strip() in ("localhost", "127.0.0.1")


def _tasks(tasks, delegated=False):
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        here = delegated or _on_controller(task)
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key), here)
        if not here:
            yield task


def deployed_paths(roles=ROLES):
    """(task file, path as the table would spell it) for every copy/template/file/... task that writes."""
    found = []
    for path in sorted(roles.glob("*/tasks/*.yml")):
        for task in _tasks(yaml.safe_load(path.read_text())):
            for module in WRITING_MODULES:
                args = task.get(f"ansible.builtin.{module}", task.get(module))
                if not isinstance(args, dict) or args.get("state") == "absent":
                    continue
                dest = args.get("dest", args.get("path"))
                items = _loop_items(task.get("loop", task.get("with_items")))
                for item in items:
                    rendered = _render(dest, item)
                    if rendered != "*":  # a path found at run time (e.g. files to tighten): nothing to name
                        found.append((str(path.relative_to(roles)), rendered))
    return found


def uncovered(paths, rows):
    patterns = [row["path"].rstrip("/") for row in rows]
    return [(where, p) for where, p in paths if not any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]


# ------------------------------------------------------------------ tests


def test_the_table_names_every_path_a_task_deploys():
    paths = deployed_paths()
    assert len(paths) > 20, paths  # the parser sees the tasks (or this proves nothing)
    missing = uncovered(paths, table_rows())
    assert not missing, "docs/permissions.md lacks a row for:\n" + "\n".join(f"  {p}  ({w})" for w, p in missing)


def test_a_new_deployed_path_is_caught(tmp_path):
    role = tmp_path / "peerquest_new" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Write a new settings file",
                    "ansible.builtin.template": {"src": "x.j2", "dest": "{{ peerquest_new_config_path }}"},
                },
                {"name": "Drop it", "ansible.builtin.file": {"path": "/etc/gone", "state": "absent"}},
            ]
        )
    )
    paths = deployed_paths(tmp_path)
    assert paths == [("peerquest_new/tasks/main.yml", "{{ peerquest_new_config_path }}")]
    assert uncovered(paths, table_rows()) == paths


def test_private_variables_and_loops_render_as_the_table_spells_them():
    spelled = {p for _, p in deployed_paths()}
    assert "{{ peerquest_app_ops_lib_dir }}/peerquest-alert" in spelled  # _peerquest_alerting_program
    assert "{{ peerquest_app_ops_python_dir }}/peerquest_health/views.py" in spelled  # a literal loop
    assert "{{ peerquest_app_ops_python_dir }}/.peerquest_ops.tar" in spelled  # _peerquest_package_archive
    assert "{{ peerquest_app_integrity_result_file | dirname }}" in spelled
    assert "/etc/sudoers.d/peerquest-monitoring" in spelled
    assert "{{ peerquest_dashboards_console_libraries_dir }}/prom.lib" in spelled  # a loop over a private list
    assert "{{ peerquest_dashboards_grafana_provisioning_file | dirname }}" in spelled  # ... | unique
    assert "{{ peerquest_runbook_controller_file }}" not in spelled  # delegate_to: localhost, not on a host


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: row["path"])
def test_each_row_is_well_formed(row):
    assert set(row) == {"path", "kind", "owner", "group", "mode", "guard", "when", "written by"}
    assert row["path"].startswith(("/", "{{ peerquest_")), row
    assert row["kind"] in KINDS and row["when"] in WHEN and row["guard"] in ("yes", "no"), row
    assert re.fullmatch(r"(<=)?[0-7]{4}|\{\{ peerquest_\w+ \}\}", row["mode"]), row
    for account in (row["owner"], row["group"]):
        fixed = account == "root" or account in PACKAGE_ACCOUNTS
        assert fixed or re.fullmatch(r"\{\{ peerquest_\w+ \}\}", account), row
    if row["guard"] == "yes":
        # Only root may change what root, cron, systemd or the app runs.
        assert row["owner"] == "root" and not re.search(r"[2367]\d$|\d[2367]$", row["mode"].lstrip("<=")), row
    if "*" in row["path"]:
        assert row["kind"] in ("files", "dirs"), row


def test_every_variable_in_the_table_exists():
    defaults = {}
    for path in ROLES.glob("*/defaults/main.yml"):
        defaults.update(yaml.safe_load(path.read_text()) or {})
    named = set(re.findall(r"\{\{ (peerquest_\w+)", TABLE.read_text()))
    assert named and named <= set(defaults), named - set(defaults)
