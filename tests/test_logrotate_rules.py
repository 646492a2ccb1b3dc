"""Retention policy -> logrotate rules, checked by the real logrotate."""

import getpass
import grp
import os
import shutil
import subprocess

import jinja2
import pytest
import yaml
from conftest import ROLES, load_module

ROLE = ROLES / "peerquest_logrotate"
plugin = load_module(ROLE / "filter_plugins" / "peerquest_logrotate.py", "pq_logrotate_plugin")
RETENTION = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["peerquest_logrotate_retention_days"]
FILES = [
    {"path": "/var/log/peerquest/django.log", "level": "INFO"},
    {"path": "/var/log/peerquest/warnings.log", "level": "WARNING"},
    {"path": "/var/log/peerquest/errors.log", "level": "ERROR"},
    {"path": "/var/log/peerquest/critical.log", "level": "CRITICAL"},
    {"path": "/var/log/peerquest/audit.log", "level": "INFO"},
    {"path": "/var/log/peerquest/debug.log", "level": "DEBUG"},
]


def by_name(rules):
    return {os.path.basename(rule["path"]): rule for rule in rules}


def test_each_file_is_kept_as_long_as_its_level_requires():
    rules = by_name(plugin.logrotate_rules(FILES, RETENTION, {}))
    assert {name: rule["retention"] for name, rule in rules.items()} == {
        "debug.log": 7,
        "django.log": 30,
        "audit.log": 30,
        "warnings.log": 90,
        "errors.log": 365,
        "critical.log": "forever",
    }
    assert rules["errors.log"]["rotate"] == 365 and rules["errors.log"]["maxage"] == 365
    assert rules["critical.log"]["rotate"] == -1 and rules["critical.log"]["maxage"] is None


def test_per_file_retention_wins_over_the_level():
    rules = by_name(plugin.logrotate_rules(FILES, RETENTION, {"audit.log": 400, "/var/log/peerquest/debug.log": 3}))
    assert rules["audit.log"]["retention"] == 400
    assert rules["debug.log"]["retention"] == 3


def test_rotation_count_follows_the_frequency():
    hourly = by_name(plugin.logrotate_rules(FILES, RETENTION, {}, "hourly"))
    weekly = by_name(plugin.logrotate_rules(FILES, RETENTION, {}, "weekly"))
    assert hourly["debug.log"]["rotate"] == 7 * 24
    assert weekly["django.log"]["rotate"] == 5  # 30 days in whole weeks, rounded up
    assert weekly["django.log"]["maxage"] == 30


def test_a_path_listed_twice_keeps_the_longer_retention():
    files = FILES + [{"path": "/var/log/peerquest/django.log", "retention_days": 60}]
    assert by_name(plugin.logrotate_rules(files, RETENTION, {}))["django.log"]["retention"] == 60
    files = FILES + [{"path": "/var/log/peerquest/errors.log", "level": "CRITICAL"}]
    assert by_name(plugin.logrotate_rules(files, RETENTION, {}))["errors.log"]["retention"] == "forever"


@pytest.mark.parametrize(
    "retention, overrides, files, expected",
    [
        (dict(RETENTION, INFO=-1), {}, FILES, "retention_days.INFO: retention must be at least 1 day"),
        (dict(RETENTION, WARNING=0), {}, FILES, "retention_days.WARNING: retention must be at least"),
        (dict(RETENTION, ERROR="365d"), {}, FILES, "retention_days.ERROR: retention must be a whole"),
        (dict(RETENTION, ERROR=36.5), {}, FILES, "peerquest_logrotate_retention_days.ERROR: retention must be a whole"),
        (dict(RETENTION, ERROR=True), {}, FILES, "peerquest_logrotate_retention_days.ERROR: retention must be a whole"),
        (dict(RETENTION, TRACE=3), {}, FILES, "peerquest_logrotate_retention_days.TRACE: unknown log level"),
        ({k: v for k, v in RETENTION.items() if k != "DEBUG"}, {}, FILES, "missing level DEBUG"),
        (RETENTION, {"audit.log": -30}, FILES, "peerquest_logrotate_file_retention.audit.log: retention must be at"),
        (
            RETENTION,
            {},
            [{"path": "relative.log", "level": "INFO"}],
            "peerquest_logrotate_files[0].path: must be an absolute",
        ),
        (RETENTION, {}, [{"path": "/x.log", "level": "LOUD"}], "peerquest_logrotate_files[0].level: unknown log level"),
    ],
)
def test_problems_name_the_variable(retention, overrides, files, expected):
    problems = plugin.logrotate_problems(retention, files, overrides)
    assert any(expected in problem for problem in problems), problems


def test_defaults_have_no_problems():
    assert plugin.logrotate_problems(RETENTION, FILES, {"audit.log": "forever", "x.log": "14"}) == []


@pytest.fixture
def rendered(tmp_path):
    """The role's template rendered for files in a scratch log directory."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    files = [dict(spec, path=str(log_dir / os.path.basename(spec["path"]))) for spec in FILES]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), trim_blocks=True)
    env.filters["comment"] = lambda text: "# " + text
    text = env.get_template("peerquest.logrotate.j2").render(
        ansible_managed="managed",
        peerquest_logrotate_retention_days=RETENTION,
        _peerquest_logrotate_rules=plugin.logrotate_rules(files, RETENTION, {}),
        peerquest_logrotate_frequency="daily",
        peerquest_logrotate_dateformat="-%Y%m%d-%s",
        peerquest_logrotate_postrotate="",
        peerquest_app_user=getpass.getuser(),
        peerquest_logdir_group=grp.getgrgid(os.getgid()).gr_name,
        peerquest_logdir_file_mode="0640",
    )
    config = tmp_path / "peerquest"
    config.write_text(text)
    return config, log_dir


@pytest.fixture(autouse=False)
def logrotate():
    # scripts/bootstrap.sh installs Debian's logrotate; without it these tests fail, never skip.
    path = shutil.which("logrotate")
    assert path, "logrotate is not installed: run scripts/bootstrap.sh"
    return path


def test_rendered_rules_pass_logrotate_debug(rendered, logrotate):
    config, _ = rendered
    result = subprocess.run(["logrotate", "-d", str(config)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "rotate -1" in config.read_text() and "rotate 365" in config.read_text()


def test_forced_rotation_creates_a_private_file_and_keeps_the_old_lines(rendered, tmp_path, logrotate):
    config, log_dir = rendered
    log = log_dir / "errors.log"
    log.write_text("ERROR old line\n")
    os.chmod(log, 0o640)
    state = tmp_path / "state"
    result = subprocess.run(
        ["logrotate", "-v", "-f", "-s", str(state), str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    rotated = [p for p in log_dir.iterdir() if p.name.startswith("errors.log-")]
    assert len(rotated) == 1, (sorted(p.name for p in log_dir.iterdir()), result.stdout + result.stderr)
    assert rotated[0].read_text() == "ERROR old line\n"  # delaycompress: not yet gzipped
    assert log.read_text() == "" and oct(log.stat().st_mode & 0o777) == "0o640"
