"""A settings file holding secrets is written with no_log; when its check refuses it, the run
says which file, and with peerquest_app_debug_checks what the check said, never a secret."""

import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import ROLES, ROOT, local_playbook, run

SECRET = "s3cret-Value-42"


def _play(tmp_path, debug):
    target = tmp_path / "settings.json"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Write a settings file whose check fails",
                    "block": [
                        {
                            "name": "Write it",
                            "ansible.builtin.copy": {
                                "content": json.dumps({"token": SECRET}),
                                "dest": str(target),
                                "mode": "0600",
                                # The check names the secret: the run must still not show it.
                                "validate": f"sh -c 'echo \"token {SECRET} is not accepted in %s\" >&2; exit 2'",
                            },
                            "no_log": True,
                        }
                    ],
                    "rescue": [
                        {
                            "name": "Report it",
                            "ansible.builtin.include_role": {"name": "peerquest_app", "tasks_from": "refused.yml"},
                            "vars": {
                                "peerquest_app__refused_file": str(target),
                                "peerquest_app__refused_secrets": [SECRET, ""],
                            },
                        }
                    ],
                }
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    return run(
        local_playbook(path, json.dumps({"peerquest_app_debug_checks": debug})),
        env={**_env(), "ANSIBLE_ROLES_PATH": str(ROLES)},
        cwd=ROOT,
    )


def _env():
    return {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}


@pytest.mark.parametrize("debug", [False, True])
def test_a_refused_settings_file_is_named_and_no_secret_shows(tmp_path, debug):
    done = _play(tmp_path, debug)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert f"{tmp_path / 'settings.json'} was refused by its check (exit 2)" in out, out
    assert SECRET not in out, out
    if debug:
        assert "token ******** is not accepted in" in out, out
    else:
        assert "is not accepted" not in out and "set peerquest_app_debug_checks to true" in out, out


def _tasks(entries):
    for entry in entries or []:
        yield entry
        for key in ("block", "rescue", "always"):
            yield from _tasks(entry.get(key))


def test_every_hidden_validated_file_reports_its_refusal():
    """Each task that writes a file with both validate: and no_log sits in a block whose rescue
    includes peerquest_app's refused.yml."""
    found = 0
    for path in sorted(Path(ROLES).glob("*/tasks/*.yml")):
        for entry in _tasks(yaml.safe_load(path.read_text())):
            for inner in entry.get("block") or []:
                module = inner.get("ansible.builtin.template") or inner.get("ansible.builtin.copy") or {}
                if module.get("validate") and inner.get("no_log"):
                    found += 1
                    rescue = entry.get("rescue") or []
                    assert any(
                        (r.get("ansible.builtin.include_role") or {}).get("tasks_from") == "refused.yml" for r in rescue
                    ), f"{path}: {inner['name']} has no rescue reporting the refusal"
        for entry in yaml.safe_load(path.read_text()) or []:
            module = entry.get("ansible.builtin.template") or entry.get("ansible.builtin.copy") or {}
            assert not (module.get("validate") and entry.get("no_log")), (
                f"{path}: {entry['name']} hides its check's message with no block reporting it"
            )
    assert found >= 3
