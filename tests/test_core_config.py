"""peerquest_ops.core.config and .eventlog: settings errors, secret scrubbing, the monitoring.log format."""

import json
import re

import pytest
from peerquest_ops.core import config
from peerquest_ops.core.eventlog import EventLog, field_value

# The monthly review's parser (peerquest-monitor review): the event log must keep matching it.
REVIEW = re.compile(r"^(\S+ \S+) peerquest-alert \S+ (\w+) .*?severity=(\S+) key=(\S+)")


@pytest.fixture(autouse=True)
def no_secrets():
    config.forget()
    yield
    config.forget()


def test_load_names_the_file(tmp_path):
    with pytest.raises(config.ConfigError, match=r"cannot read .*missing.json: No such file"):
        config.load(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(config.ConfigError, match=r"bad.json is not valid JSON"):
        config.load(str(bad))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"a": 1}))
    assert config.load(str(good)) == {"a": 1}


def test_scrub_replaces_every_secret_longest_first():
    url = "https://hooks.test/services/T1/B2/secret-part?key=query-part"
    config.remember("pw", "password-1", *config.url_secrets(url))
    text = config.scrub(f"posting to {url} with password-1 and pw; path /services/T1/B2/secret-part")
    assert "secret-part" not in text and "query-part" not in text and "password-1" not in text
    assert "pw" in text  # too short to be registered: it would scrub ordinary words
    assert text.count("***") == 3


def test_event_line_format_and_quoting(tmp_path):
    path = tmp_path / "monitoring.log"
    log = EventLog(str(path), "peerquest-alert")
    log.event("INFO", "suppressed duplicate", severity="CRITICAL", key="CRITICAL DB down", channel="-", count=2)
    log.event("WARNING", "queued", severity="WARNING", key="k1", channel="webhook", error='HTTP 500 "x"', id="")
    log.line("free text")
    first, second, third = path.read_text().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d peerquest-alert INFO suppressed duplicate "
        r'severity=CRITICAL key="CRITICAL DB down" channel=- count=2',
        first,
    )
    assert second.endswith(' WARNING queued severity=WARNING key=k1 channel=webhook error="HTTP 500 \\"x\\"" id=""')
    assert re.fullmatch(r"\S+ \S+ peerquest-alert free text", third)
    assert [REVIEW.match(line).group(2, 3) for line in (first, second)] == [
        ("suppressed", "CRITICAL"),
        ("queued", "WARNING"),
    ]
    assert [field_value(v) for v in ("a=b", "plain", "")] == ['"a=b"', "plain", '""']


def test_event_log_scrubs_and_survives_an_unwritable_file(tmp_path, capsys):
    config.remember("token-abcdef")
    path = tmp_path / "monitoring.log"
    EventLog(str(path), "peerquest-alert").event("ERROR", "failed", error="sent token-abcdef")
    assert "token-abcdef" not in path.read_text() and 'error="sent ***"' in path.read_text()
    warnings = []
    broken = EventLog(str(tmp_path / "no-dir" / "x.log"), "peerquest-alert", warn=warnings.append)
    broken.event("INFO", "sent")
    broken.event("INFO", "sent")
    assert warnings == [f"cannot write {tmp_path / 'no-dir' / 'x.log'}: No such file or directory"]
    EventLog(str(tmp_path / "no-dir" / "x.log"), "peerquest-monitor").line("x")
    assert "peerquest-monitor: warning: cannot write" in capsys.readouterr().err
    EventLog("", "peerquest-alert").event("INFO", "sent")  # off: nothing, no error
