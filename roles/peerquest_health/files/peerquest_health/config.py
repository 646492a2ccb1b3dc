"""Settings of the health endpoints, read from a JSON file the role writes.

Run as a script to check a file before it is installed:
    python config.py FILE
"""

import importlib
import json
import sys

# key: (type, required)
SCHEMA = {
    "token": (str, True),
    "open": (bool, True),
    "integrity_state_file": (str, True),
    "integrity_max_age_seconds": (int, True),
    "integrity_required": (bool, True),
    "log_dir": (str, True),
    "min_free_disk_mb": (int, True),
    "models": (dict, True),
}


def problems(config):
    found = []
    if not isinstance(config, dict):
        return ["the file must hold a JSON object"]
    for key, (kind, required) in SCHEMA.items():
        if key not in config:
            if required:
                found.append(f"missing key {key!r}")
        elif not isinstance(config[key], kind) or (kind is int and isinstance(config[key], bool)):
            found.append(f"{key!r} must be {kind.__name__}, got {type(config[key]).__name__}")
    for key in set(config) - set(SCHEMA):
        found.append(f"unknown key {key!r}")
    if config.get("open") is False and config.get("token") == "":
        found.append("'token' is empty and 'open' is false: /health/ would refuse every request")
    if config.get("open") is True and config.get("token"):
        found.append("'open' is true but a 'token' is set: an open /health/ ignores it")
    for name, label in (config.get("models") or {}).items():
        if not isinstance(label, str) or label.count(".") != 1:
            found.append(f"models.{name} must be 'app_label.ModelName', got {label!r}")
    return found


def load(path=None):
    """The settings at path, by default where the role rendered them (deployed.CONFIG_PATH)."""
    if path is None:
        path = importlib.import_module("peerquest_health.deployed").CONFIG_PATH
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv):
    if len(argv) != 2:
        print("usage: config.py FILE", file=sys.stderr)
        return 2
    try:
        found = problems(load(argv[1]))
    except (OSError, ValueError) as exc:
        found = [str(exc)]
    for problem in found:
        print(f"{argv[1]}: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
