"""The LOGGING the peerquest_logging role renders: files per level, masking, rotation."""

import contextlib
import json
import logging
import logging.config
import os
import stat
import subprocess
import sys

import jinja2
import pytest
import yaml
from conftest import ROLES, load_module

ROLE = ROLES / "peerquest_logging"
PACKAGE_DIR = ROLE / "files"
plugin = load_module(ROLE / "filter_plugins" / "peerquest_logging.py", "pq_logging_plugin")
sys.path.insert(0, str(PACKAGE_DIR))
from peerquest_logging.filters import MASK, SecretMaskingFilter  # noqa: E402
from peerquest_logging.handlers import PrivateWatchedFileHandler  # noqa: E402

DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def build(log_dir, handlers=None, loggers=None, root=None):
    return plugin.logging_config(
        DEFAULTS["peerquest_logging_formatters"],
        handlers or DEFAULTS["peerquest_logging_handlers"],
        loggers or DEFAULTS["peerquest_logging_loggers"],
        DEFAULTS["peerquest_logging_root"] if root is None else root,
        str(log_dir),
        "0640",
        DEFAULTS["peerquest_logging_mask_keys"],
        False,
        DEFAULTS["peerquest_logging_critical_handler"],
    )


def render(config):
    """Render the role's template the way Ansible does (same filters' output)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), keep_trailing_newline=True)
    env.filters["comment"] = lambda text: "#\n# " + text + "\n#"
    env.filters["to_nice_json"] = lambda data, indent=4: json.dumps(data, indent=indent, sort_keys=True)
    return env.get_template("settings.py.j2").render(ansible_managed="managed", _peerquest_logging_config=config)


@pytest.fixture
def configured(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    logging.config.dictConfig(build(log_dir))
    yield log_dir
    logging.shutdown()
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_each_level_reaches_the_files_that_keep_it(configured):
    logging.getLogger("applications").info("info-line")
    logging.getLogger("quests").warning("warning-line")
    logging.getLogger("applications").error("Application approval failed for 7")
    logging.getLogger("django").critical("CRITICAL: database gone")
    logging.getLogger("audit").info("audit-line")
    for handler in logging.getLogger().handlers + logging.getLogger("applications").handlers:
        handler.flush()

    def where(text):
        return sorted(p.name for p in configured.iterdir() if any(text in line for line in lines(p)))

    assert where("info-line") == ["django.log"]
    assert where("warning-line") == ["django.log", "warnings.log"]
    assert where("Application approval failed") == ["django.log", "errors.log", "warnings.log"]
    assert where("CRITICAL: database gone") == ["critical.log", "django.log", "errors.log", "warnings.log"]
    assert where("audit-line") == ["audit.log"]


def test_lines_are_not_duplicated_in_a_file(configured):
    logging.getLogger("quests").error("once-only")
    errors = [line for line in lines(configured / "errors.log") if "once-only" in line]
    assert len(errors) == 1


def test_files_are_created_private(configured):
    old = os.umask(0)
    try:
        logging.getLogger("quests").warning("anything")
    finally:
        os.umask(old)
    for path in configured.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


@contextlib.contextmanager
def logger_writing_to(path, name):
    """A logger of its own whose only handler is the deployed one, on path."""
    handler = PrivateWatchedFileHandler(str(path))
    log = logging.getLogger(name)
    log.addHandler(handler)
    log.propagate = False
    try:
        yield log
    finally:
        log.removeHandler(handler)
        handler.close()


def test_rotated_file_is_not_written_again(tmp_path):
    with logger_writing_to(tmp_path / "django.log", "rotation-test") as log:
        log.warning("before rotation")
        os.rename(tmp_path / "django.log", tmp_path / "django.log-20260101")
        log.warning("after rotation")
    assert lines(tmp_path / "django.log-20260101") == ["before rotation"]
    assert lines(tmp_path / "django.log") == ["after rotation"]


def test_a_removed_log_directory_costs_the_record_not_the_caller(tmp_path, capsys):
    (tmp_path / "logs").mkdir()
    with logger_writing_to(tmp_path / "logs" / "django.log", "removed-dir-test") as log:
        log.warning("before")
        os.rename(tmp_path / "logs", tmp_path / "gone")
        log.warning("while the directory is gone")  # must not raise into the caller
        assert "No such file or directory" in capsys.readouterr().err
        (tmp_path / "logs").mkdir()
        log.warning("back")
    assert lines(tmp_path / "gone" / "django.log") == ["before"]
    assert lines(tmp_path / "logs" / "django.log") == ["back"]


@pytest.mark.parametrize(
    "message, secret",
    [
        ("login failed password=hunter2 for bob", "hunter2"),
        ('payload {"api_key": "abc123XYZ", "user": 3}', "abc123XYZ"),
        ("Authorization: Bearer eyJhbGciOi.J9", "eyJhbGciOi.J9"),
        ("reset token: 5f2e9a user=7", "5f2e9a"),
        ("DB_PASSWORD='s3cr3t' loaded", "s3cr3t"),
        ("slack webhook secret=xoxb-1-2-3&channel=ops", "xoxb-1-2-3"),
    ],
)
def test_secrets_are_masked(message, secret):
    masked = SecretMaskingFilter().mask(message)
    assert secret not in masked
    assert MASK in masked


def test_plain_text_is_left_alone():
    text = "Application approval failed: quest 12 has no free slot (tokens left: n/a)"
    assert SecretMaskingFilter(keys=("password",)).mask(text) == text


def test_masking_applies_to_formatted_args_and_tracebacks(configured):
    try:
        raise ValueError("password=inner-secret")
    except ValueError:
        logging.getLogger("quests").exception("retry with %s", "token=outer-secret")
    text = (configured / "errors.log").read_text()
    assert "outer-secret" not in text and "inner-secret" not in text
    assert text.count(MASK) >= 2


def test_problems_name_the_variable():
    handlers = dict(DEFAULTS["peerquest_logging_handlers"], bad={"filename": "x.log", "level": "LOUD"})
    loggers = dict(DEFAULTS["peerquest_logging_loggers"], quests={"handlers": ["missing"], "level": "INFO"})
    problems = plugin.logging_problems(DEFAULTS["peerquest_logging_formatters"], handlers, loggers, {})
    assert "peerquest_logging_handlers.bad.level: unknown log level 'LOUD'" in problems[0]
    assert any("peerquest_logging_loggers.quests.handlers: no handler named 'missing'" in p for p in problems)
    assert (
        plugin.logging_problems(
            DEFAULTS["peerquest_logging_formatters"],
            DEFAULTS["peerquest_logging_handlers"],
            DEFAULTS["peerquest_logging_loggers"],
            DEFAULTS["peerquest_logging_root"],
        )
        == []
    )


def test_absent_entries_are_dropped(tmp_path):
    handlers = dict(DEFAULTS["peerquest_logging_handlers"], console={"state": "absent"})
    loggers = {"django": {"handlers": ["file"], "level": "INFO"}, "audit": {"state": "absent"}}
    config = build(tmp_path, handlers, loggers)
    assert "console" not in config["handlers"] and "audit" not in config["loggers"]


def test_published_files_carry_their_level(tmp_path):
    files = {os.path.basename(f["path"]): f["level"] for f in plugin.logging_files(build(tmp_path))}
    assert files == {
        "django.log": "INFO",
        "requests.log": "INFO",
        "warnings.log": "WARNING",
        "errors.log": "ERROR",
        "critical.log": "CRITICAL",
        "audit.log": "INFO",
    }


def check(settings_text, tmp_path, log_dir):
    settings = tmp_path / "settings.py"
    settings.write_text(settings_text)
    return subprocess.run(
        [sys.executable, str(PACKAGE_DIR / "peerquest_logging" / "check.py"), str(settings), str(log_dir)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_rendered_module_passes_the_check_without_touching_the_log_dir(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    result = check(render(build(log_dir)), tmp_path, log_dir)
    assert result.returncode == 0, result.stderr
    assert list(log_dir.iterdir()) == []


def test_check_rejects_a_plain_file_handler(tmp_path):
    handlers = dict(DEFAULTS["peerquest_logging_handlers"])
    handlers["file"] = dict(handlers["file"], **{"class": "logging.FileHandler"})
    result = check(render(build(tmp_path, handlers)), tmp_path, tmp_path)
    assert result.returncode == 1
    assert "handler 'file' is a plain FileHandler" in result.stderr


def test_check_rejects_an_unknown_level(tmp_path):
    config = build(tmp_path)
    config["handlers"]["file"]["level"] = "VERBOSE"
    result = check(render(config), tmp_path, tmp_path)
    assert result.returncode == 1 and "VERBOSE" in result.stderr


def test_check_rejects_a_file_outside_the_log_dir(tmp_path):
    config = build(tmp_path)
    config["handlers"]["file"]["filename"] = "/tmp/elsewhere.log"
    result = check(render(config), tmp_path, tmp_path)
    assert result.returncode == 1 and "outside" in result.stderr


def test_check_rejects_broken_python(tmp_path):
    result = check("LOGGING = {'version': 1,\n", tmp_path, tmp_path)
    assert result.returncode == 1 and "SyntaxError" in result.stderr


def test_every_critical_reaches_the_critical_file_whatever_its_logger(configured):
    # "audit" does not propagate, "billing" is configured nowhere: both must land in critical.log.
    logging.getLogger("audit").critical("CRITICAL: audit trail tampered")
    logging.getLogger("billing").critical("invoice run failed")
    logging.getLogger("audit").error("not critical")
    critical = lines(configured / "critical.log")
    assert [line.split(" ", 1)[0] for line in critical] == ["CRITICAL", "CRITICAL"]
    assert "audit trail tampered" in critical[0] and "invoice run failed" in critical[1]


def test_an_unknown_critical_handler_is_named(tmp_path):
    problems = plugin.logging_problems(
        DEFAULTS["peerquest_logging_formatters"],
        DEFAULTS["peerquest_logging_handlers"],
        DEFAULTS["peerquest_logging_loggers"],
        DEFAULTS["peerquest_logging_root"],
        "crit_file",
    )
    assert problems == [
        "peerquest_logging_critical_handler: no handler named 'crit_file' in peerquest_logging_handlers"
    ]
