"""Filters for peerquest_alerting's checks, built on the package's shared constants.

The severities, channels and e-mail address pattern the checks use come from
roles/peerquest_package/files/peerquest_ops/core/constants.py, the module the
program on the host imports: the preflight and peerquest-alert cannot disagree.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "peerquest_package" / "files" / "peerquest_ops"
CONSTANTS_FILE = PACKAGE_DIR / "core" / "constants.py"


def _load_constants(path=CONSTANTS_FILE):
    # Executed from its source, not imported: nothing is added to sys.path and no
    # __pycache__ is written into the package the role ships.
    namespace = {"__name__": "peerquest_ops.core.constants", "__file__": str(path)}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)  # noqa: S102 - the project's own file
    return namespace


CONSTANTS = _load_constants()


def alerting_constant(name):
    """A constant of peerquest_ops.core.constants for Jinja: tuples as lists, a compiled pattern as its text."""
    if name == "EMAIL_ADDRESS":
        return CONSTANTS["EMAIL_ADDRESS_PATTERN"]
    value = CONSTANTS[name]
    return list(value) if isinstance(value, tuple) else value


def alerting_addresses(recipients, sender):
    """Flatten the alert addresses so each can be checked with its variable name."""
    out = [{"var": "peerquest_alerting_email_from", "address": sender}]
    for severity, addresses in sorted((recipients or {}).items()):
        for address in addresses or []:
            out.append({"var": f"peerquest_alerting_email_recipients.{severity}", "address": address})
    return out


class FilterModule:
    def filters(self):
        return {
            "peerquest_alerting_addresses": alerting_addresses,
            "peerquest_alerting_constant": alerting_constant,
        }
