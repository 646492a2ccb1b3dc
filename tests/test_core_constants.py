"""One source of truth: the package's constants and the roles' checks agree.

peerquest_ops.core.constants is what the programs on the hosts import; the
alerting role's preflight reads the same file through its filter plugin. These
tests fail when either side spells a severity, level, channel or the e-mail
address pattern out on its own, or when a copy that still exists elsewhere
drifted from the constants.
"""

import re
from pathlib import Path

import pytest
import yaml
from conftest import PACKAGE_DIR, ROLES, load_module
from peerquest_ops.alerting import schema
from peerquest_ops.core import constants

ALERTING = ROLES / "peerquest_alerting"
FILTERS = load_module(ALERTING / "filter_plugins" / "peerquest_alerting.py", "pq_alerting_filters")


def _yaml(path):
    return yaml.safe_load(path.read_text()) or {}


def test_the_filter_plugin_reads_the_packages_constants_file():
    assert FILTERS.CONSTANTS_FILE == PACKAGE_DIR / "peerquest_ops" / "core" / "constants.py"
    assert FILTERS.CONSTANTS_FILE.resolve() == Path(constants.__file__).resolve()
    for name in ("SEVERITIES", "LEVELS", "CHANNELS"):
        assert FILTERS.alerting_constant(name) == list(getattr(constants, name))
    assert FILTERS.alerting_constant("EMAIL_ADDRESS") == constants.EMAIL_ADDRESS.pattern


def test_the_alerting_preflight_spells_out_no_severity_or_address_pattern():
    text = (ALERTING / "tasks" / "preflight.yml").read_text()
    assert "peerquest_alerting_constant" in text
    for severity in constants.SEVERITIES:
        assert not re.search(rf"['\"]{severity}['\"]", text), f"{severity} written out in the preflight"
    assert "@localhost" not in text and "[A-Za-z]{2,}" not in text


ADDRESSES = {
    "oncall@peerquest.test": True,
    "first.last+tag@mail.peerquest.example.com": True,
    "root@localhost": True,
    "a@x..com": False,  # the old program accepted it, the preflight did not
    "a@.x.com": False,
    "a@x.c": False,
    "a@x.com\n": False,
    "a b@x.com": False,
    "<a@x.com>": False,
    "a@x.com, b@x.com": False,
    "monitoring@": False,
}


@pytest.mark.parametrize("address, valid", ADDRESSES.items(), ids=repr)
def test_both_sides_judge_an_address_alike(address, valid):
    # Ansible's `match` test is re.match with the pattern text the filter hands to Jinja.
    assert bool(re.match(FILTERS.alerting_constant("EMAIL_ADDRESS"), address)) is valid
    problems = schema.email_problems(
        {
            "email": {
                "enabled": True,
                "from": address,
                "recipients": {},
                "smtp": {"host": "h", "starttls": False, "ssl": False, "user": "", "password": ""},
            }
        }
    )
    assert (problems == []) is valid, problems


def test_role_defaults_use_the_severities_and_levels():
    alerting = _yaml(ALERTING / "defaults" / "main.yml")
    assert tuple(alerting["peerquest_alerting_email_recipients"]) == constants.SEVERITIES
    assert tuple(alerting["peerquest_alerting_routes"]) == constants.SEVERITIES
    assert {c for cs in alerting["peerquest_alerting_routes"].values() for c in cs} <= set(constants.CHANNELS)
    retention = _yaml(ROLES / "peerquest_logrotate" / "defaults" / "main.yml")["peerquest_logrotate_retention_days"]
    assert tuple(retention) == constants.LEVELS


def test_the_enabled_channel_switches_name_every_channel():
    text = (ALERTING / "vars" / "main.yml").read_text()
    switches = _yaml(ALERTING / "vars" / "main.yml")["_peerquest_alerting_enabled_channels"]
    assert tuple(re.findall(r"\['(\w+)'\]", switches)) == constants.CHANNELS, text
    assert tuple(schema.URL_KEYS) == constants.CHANNELS[1:]


def _copies():
    """Copies of the constants that other files still carry, until they import them."""
    found = []
    for role, name in (("peerquest_logging", "LEVELS"), ("peerquest_logrotate", "LEVELS")):
        for path in sorted((ROLES / role / "filter_plugins").glob("*.py")):
            module = load_module(path, f"pq_copy_{path.stem}")
            if hasattr(module, name):
                found.append(
                    (f"{path.relative_to(ROLES)}:{name}", tuple(getattr(module, name)), getattr(constants, name))
                )
    monitor = ROLES / "peerquest_monitors" / "files" / "peerquest-monitor"
    if monitor.exists():
        module = load_module(monitor, "pq_copy_monitor")
        if hasattr(module, "SEVERITIES"):
            found.append(("peerquest-monitor:SEVERITIES", tuple(module.SEVERITIES), constants.SEVERITIES))
    preflight = ROLES / "peerquest_monitors" / "tasks" / "preflight.yml"
    for task in _yaml(preflight) if preflight.exists() else []:
        value = (task.get("vars") or {}).get("_peerquest_monitors_severities")
        if isinstance(value, list):
            found.append(("peerquest_monitors preflight", tuple(value), constants.SEVERITIES))
    return found


def test_remaining_copies_agree_with_the_constants():
    copies = _copies()
    # While the copies exist, the test must see them (a broken finder would pass on nothing).
    assert not (ROLES / "peerquest_monitors" / "files" / "peerquest-monitor").exists() or copies
    for where, value, expected in _copies():
        assert value == expected, f"{where} differs from peerquest_ops.core.constants"
