"""peerquest-logchain: the hash chain over rotated logs detects a changed, deleted or reordered record."""

import gzip
import json
import os
import shlex
import shutil
import subprocess
import time

import pytest
from conftest import fake_alert_command, package_command

COMMAND = package_command("peerquest_ops.logchain.cli")


@pytest.fixture
def site(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    alert, sent = fake_alert_command(tmp_path)
    settings = {"manifest": str(tmp_path / "chain" / "manifest.jsonl"), "alert_command": str(alert), "alert_user": ""}
    config = tmp_path / "logchain.json"
    config.write_text(json.dumps(settings))
    return {"logs": logs, "config": config, "manifest": tmp_path / "chain" / "manifest.jsonl", "sent": sent}


def run(site, *args):
    return subprocess.run(
        [*COMMAND, "--config", str(site["config"]), *args], capture_output=True, text=True, check=False, timeout=30
    )


def rotate(site, name, suffix, text):
    """What logrotate does: the log moves to its dated name and a new one starts; then the hook runs."""
    log = site["logs"] / name
    log.write_text(text)
    rotated = site["logs"] / f"{name}-{suffix}"
    os.rename(log, rotated)
    log.write_text("")
    result = run(site, "record", str(log))
    assert result.returncode == 0, result.stderr
    return rotated


def compress(path):
    """logrotate's delaycompress: the copy is compressed at the next rotation."""
    with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(path)
    return path.with_name(path.name + ".gz")


def alerts(site):
    return [json.loads(line) for line in site["sent"].read_text().splitlines()] if site["sent"].exists() else []


@pytest.fixture
def chained(site):
    """Three rotations of two logs, the older copies compressed as logrotate does."""
    a1 = rotate(site, "django.log", "20261126-1", "INFO one\n")
    b1 = rotate(site, "errors.log", "20261126-1", "ERROR one\n")
    a2 = rotate(site, "django.log", "20261127-2", "INFO two\n")
    a1 = compress(a1)
    a3 = rotate(site, "django.log", "20261128-3", "INFO three\n")
    a2 = compress(a2)
    return site, {"a1": a1, "b1": b1, "a2": a2, "a3": a3}


def test_an_intact_chain_verifies_whether_files_are_compressed_or_not(chained):
    site, _ = chained
    result = run(site, "verify")
    assert result.returncode == 0, result.stderr
    assert "4 entries, chain intact, every rotated file unchanged" in result.stdout
    entries = [json.loads(line) for line in site["manifest"].read_text().splitlines()]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert [os.path.basename(e["file"]) for e in entries] == [
        "django.log-20261126-1",
        "errors.log-20261126-1",
        "django.log-20261127-2",
        "django.log-20261128-3",
    ]
    assert all(e["prev"] == p["hash"] for p, e in zip(entries, entries[1:], strict=False))
    assert alerts(site) == []


def test_a_changed_rotated_file_is_named(chained):
    site, files = chained
    files["b1"].write_text("ERROR one\nnothing to see\n")
    result = run(site, "verify")
    assert result.returncode == 1
    assert f"{files['b1']}: changed since it was rotated" in result.stderr
    assert "django.log" not in result.stderr


def test_a_changed_compressed_file_is_named(chained):
    site, files = chained
    with gzip.open(files["a1"], "wb") as handle:
        handle.write(b"INFO one, edited\n")
    result = run(site, "verify")
    assert result.returncode == 1 and f"{files['a1']}: changed since it was rotated" in result.stderr


def test_a_deleted_rotated_file_is_named(chained):
    site, files = chained
    files["a2"].unlink()
    result = run(site, "verify")
    assert result.returncode == 1
    assert f"{str(files['a2'])[:-3]}: missing (rotated " in result.stderr


@pytest.mark.parametrize("change", ["reordered", "line removed", "entry edited", "line truncated"])
def test_a_tampered_manifest_is_detected(chained, change):
    site, _ = chained
    lines = site["manifest"].read_text().splitlines()
    if change == "reordered":
        lines[1], lines[2] = lines[2], lines[1]
    elif change == "line removed":
        del lines[1]
    elif change == "entry edited":
        entry = json.loads(lines[1])
        entry["sha256"] = "0" * 64
        lines[1] = json.dumps(entry)
    else:
        lines[1] = lines[1][:40]
    site["manifest"].write_text("\n".join(lines) + "\n")
    result = run(site, "verify")
    assert result.returncode == 1
    expected = {
        "reordered": "chain broken",
        "line removed": "chain broken",
        "entry edited": "entry changed",
        "line truncated": "not a manifest entry",
    }[change]
    assert f"{site['manifest']} line 2" in result.stderr and expected in result.stderr


def test_retention_removal_is_not_a_problem_but_a_change_before_it_is(chained):
    site, files = chained
    assert run(site, "expire", str(files["a1"])).returncode == 0
    files["a1"].unlink()  # logrotate removes it after its preremove hook
    assert run(site, "verify").returncode == 0
    files["b1"].write_text("edited\n")
    result = run(site, "expire", str(files["b1"]))
    assert result.returncode == 0  # logrotate removes it anyway; the change is reported
    assert f"{files['b1']}: changed since it was rotated" in result.stderr
    assert len(alerts(site)) == 1


def test_record_verifies_and_alerts_naming_the_file(chained):
    site, files = chained
    files["a3"].unlink()
    log = site["logs"] / "errors.log"
    log.write_text("ERROR two\n")
    os.rename(log, site["logs"] / "errors.log-20261128-3")
    result = run(site, "record", str(log))
    assert result.returncode == 1 and "recorded 1 rotated file(s)" in result.stdout
    [sent] = alerts(site)
    assert sent["argv"][:2] == ["--severity", "CRITICAL"]
    assert f"{files['a3']}: missing" in sent["stdin"]
    # Each rotated file is recorded once.
    assert run(site, "record", str(log)).stdout.count("recorded 0 rotated file(s)") == 1


def test_bad_settings_are_refused(site):
    site["config"].write_text(
        json.dumps({"manifest": "relative/manifest.jsonl", "alert_command": "", "alert_user": ""})
    )
    result = run(site, "verify")
    assert result.returncode == 2 and "manifest: must be an absolute path" in result.stderr


# ------------------------------------------------- the logrotate hooks, for real


def hooked_rules(tmp_path, site, rotate=1):
    """The role's rules template with the integrity hooks on, calling a stand-in for the deployed command."""
    import getpass
    import grp

    import jinja2
    from conftest import ROLES

    command = tmp_path / "peerquest-logchain"
    argv = " ".join(shlex.quote(arg) for arg in package_command("peerquest_ops.logchain.cli"))
    command.write_text(f'#!/bin/sh\nexec {argv} --config {site["config"]} "$@"\n')
    command.chmod(0o755)
    log = site["logs"] / "django.log"
    rules = [{"path": str(log), "retention": rotate, "rotate": rotate, "maxage": None}]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROLES / "peerquest_logrotate" / "templates")), trim_blocks=True
    )
    env.filters["comment"] = lambda text: "# " + text
    text = env.get_template("peerquest.logrotate.j2").render(
        ansible_managed="managed",
        peerquest_logrotate_retention_days={},
        _peerquest_logrotate_rules=rules,
        peerquest_logrotate_frequency="daily",
        peerquest_logrotate_dateformat="-%Y%m%d-%s",
        peerquest_logrotate_postrotate="",
        peerquest_app_user=getpass.getuser(),
        peerquest_logdir_group=grp.getgrgid(os.getgid()).gr_name,
        peerquest_logdir_file_mode="0640",
        _peerquest_logrotate_integrity=True,
        peerquest_logrotate_integrity_command_path=str(command),
    )
    config = tmp_path / "rules"
    config.write_text(text)
    return config, log


def logrotate(config, tmp_path):
    # -v: what logrotate decided is in the output a failed assertion shows.
    return subprocess.run(
        ["logrotate", "-v", "-f", "-s", str(tmp_path / "state"), str(config)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_logrotate_hooks_chain_each_rotation_across_compression_and_retention(site, tmp_path):
    config, log = hooked_rules(tmp_path, site, rotate=2)
    assert "lastaction" in config.read_text() and "preremove" in config.read_text()
    names = []
    for n in range(4):
        log.write_text(f"INFO line {n}\n")
        result = logrotate(config, tmp_path)
        assert result.returncode == 0, result.stderr
        new = [
            p.name
            for p in site["logs"].iterdir()
            if p.name.startswith("django.log-") and p.suffix != ".gz" and p.name not in names
        ]
        assert len(new) == 1, (new, sorted(p.name for p in site["logs"].iterdir()), result.stdout + result.stderr)
        names.append(new[0])
        time.sleep(1.1)  # the date format ends in %s: one rotation per second
    entries = [json.loads(line) for line in site["manifest"].read_text().splitlines()]
    rotated = [os.path.basename(e["file"]) for e in entries if e["event"] == "rotated"]
    expired = [os.path.basename(e["file"]) for e in entries if e["event"] == "expired"]
    # Each rotation recorded once; retention (rotate 2) removed the two oldest, each recorded before it went.
    assert rotated == names and expired == names[:2]
    assert sorted(p.name for p in site["logs"].iterdir() if p.name != "django.log") == [names[2] + ".gz", names[3]]
    assert run(site, "verify").returncode == 0
    # The newest copy edited after its rotation: the next rotation compresses it (content as edited), then
    # its lastaction fails, naming it, and alerts.
    (site["logs"] / names[3]).write_text("INFO line 3, edited\n")
    log.write_text("INFO line 5\n")
    result = logrotate(config, tmp_path)
    assert result.returncode != 0
    assert f"{names[3]}.gz: changed since it was rotated" in result.stderr
    assert any(names[3] in sent["stdin"] for sent in alerts(site))
