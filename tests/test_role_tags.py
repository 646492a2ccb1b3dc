"""Every role tags its steps <role>_<step>, so one step of one role can be rerun.

`--tags peerquest_monitors_configure` rewrites the monitors' settings and
schedule and nothing else; the checks still run first (playbooks/preflight.yml
is tagged always).
"""

import pytest
import yaml
from conftest import ROLES

STEPS = ("preflight", "install", "configure", "run", "remove")
ROLE_DIRS = sorted(p for p in ROLES.iterdir() if (p / "tasks" / "main.yml").exists())


def _used_by_other_roles(role, task_file):
    """Included by another role or by a playbook (include_role tasks_from): an entry point, not a step."""
    playbooks = ROLES.parent / "playbooks"
    users = [path for path in ROLES.glob("*/tasks/*.yml") if path.parent.parent != role]
    users += list(playbooks.glob("*.yml"))
    return any(f"tasks_from: {task_file}" in path.read_text() for path in users)


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda p: p.name)
def test_each_step_file_is_imported_with_its_role_tag(role):
    with open(role / "tasks" / "main.yml", encoding="utf-8") as handle:
        entries = yaml.safe_load(handle)
    imported = {}
    for entry in entries:
        target = entry.get("ansible.builtin.import_tasks")
        tags = set(entry.get("tags") or [])
        include = entry.get("ansible.builtin.include_tasks")
        if include:
            # A conditional step is included, so that skipping it costs one task; its tasks carry its tags.
            target = include["file"]
            assert tags <= set(include["apply"]["tags"]), f"{role.name}: {target} does not apply its tags"
        assert target, f"{role.name}: tasks/main.yml only imports or includes step files, found {entry.get('name')!r}"
        imported[target.removesuffix(".yml")] = tags
    # Other task files are entry points for other roles and plays (include_role tasks_from), not steps.
    present = {p.stem for p in (role / "tasks").glob("*.yml")} - {"main"}
    shared = {name for name in present - set(STEPS) if _used_by_other_roles(role, f"{name}.yml")}
    present -= shared
    assert set(imported) == present, f"{role.name}: step files not imported: {sorted(present - set(imported))}"
    for step, tags in imported.items():
        assert step in STEPS, f"{role.name}: {step}.yml is not one of the steps {STEPS}"
        assert f"{role.name}_{step}" in tags, f"{role.name}: {step}.yml is not tagged {role.name}_{step}"
