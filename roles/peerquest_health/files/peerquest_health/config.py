"""Settings of the health endpoints, read from a JSON file the role writes.

Run as a script to check a file before it is installed:
    python config.py FILE
"""

import importlib
import json
import re
import sys

# The end of a metric's name: peerquest_<name>.
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*")
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
    # /health/metrics/: metric name suffix -> {model: app_label.ModelName, status_field: name}.
    "metrics": (dict, False),
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
    for name, spec in (config.get("metrics") or {}).items():
        found += _metric_problems(name, spec)
    return found


def _metric_problems(name, spec):
    where = f"metrics.{name}"
    if not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
        return [f"{where}: the name must be lower case letters, digits and _ (it ends the metric's name)"]
    if not isinstance(spec, dict) or set(spec) != {"model", "status_field"}:
        return [f"{where} must be {{model, status_field}}, got {spec!r}"]
    found = []
    if not isinstance(spec["model"], str) or spec["model"].count(".") != 1:
        found.append(f"{where}.model must be 'app_label.ModelName', got {spec['model']!r}")
    if not isinstance(spec["status_field"], str) or not spec["status_field"].isidentifier():
        found.append(f"{where}.status_field must be a field name, got {spec['status_field']!r}")
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
