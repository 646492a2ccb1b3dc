"""node_exporter's textfile collector: one .prom file per writer, replaced atomically.

    family = ("peerquest_slow_operations", "gauge", [({}, 3)])
    write(directory, "performance", [family])    # <directory>/peerquest_performance.prom, mode 0644

The file is written to a hidden temporary name in the same directory (the
collector reads only *.prom) and renamed over the old one: a scrape sees the
old figures or the new ones, never half. A sample whose value is None keeps
the value the previous file had for it (or is left out when it had none), so
"last success" or "last audit" survive a run that did not succeed.

An empty directory turns writing off. A directory that is missing or not
writable never stops the caller: it is said once per process in the job log
and the figures are dropped.
"""

import contextlib
import math
import os
import re

from peerquest_ops.metrics.names import HELP
from peerquest_ops.monitors.runtime import log

MODE = 0o644  # node_exporter runs as its own account
PREFIX = "peerquest_"
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)")
_WARNED = set()


def path_for(directory, name):
    return os.path.join(directory, f"{PREFIX}{name}.prom")


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels_text(labels):
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items())) + "}"


def value_text(value):
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def read_samples(path):
    """{(name, labels text): value text} of a .prom file; {} when it cannot be read."""
    samples = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                match = _SAMPLE.match(line)
                if match and not line.startswith("#"):
                    samples[(match.group(1), match.group(2) or "")] = match.group(3)
    except (OSError, ValueError):
        return {}
    return samples


def render(families, previous=None):
    """The text format 0.0.4 of families [(name, type, [(labels, value), ...])]."""
    previous = previous or {}
    lines = []
    for name, kind, samples in families:
        body = []
        for labels, value in samples:
            key = (name, labels_text(labels))
            text = value_text(value) if value is not None else previous.get(key)
            if text is not None:
                body.append(f"{name}{key[1]} {text}")
        if body:
            lines += [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} {kind}", *body]
    return "\n".join(lines) + "\n" if lines else ""


def _warn_once(directory, exc):
    if directory in _WARNED:
        return
    _WARNED.add(directory)
    log(f"WARNING metrics: cannot write into {directory} ({type(exc).__name__}: {exc}); the job goes on without them")


def write(directory, name, families):
    """Replace <directory>/peerquest_<name>.prom with families; whether it was written."""
    if not directory:
        return False
    path = path_for(directory, name)
    text = render(families, read_samples(path))
    tmp = os.path.join(directory, f".{PREFIX}{name}.prom.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), MODE)
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        _warn_once(directory, exc)
        return False
    return True
