"""Prometheus' text format 0.0.4 for /health/metrics/: gauges with bounded labels, no Django needed."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A value outside the field's choices (or NULL) counts here, so the labels stay the choices plus one.
OTHER = "other"


def _escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def gauge(name, help_text, samples):
    """Lines of one gauge: samples [(labels dict, value)]."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        text = ",".join(f'{key}="{_escape(val)}"' for key, val in sorted(labels.items()))
        lines.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")
    return lines


def by_status(choices, rows):
    """[(labels, count)] for every choice (0 when none) plus OTHER: rows are (status, count) pairs."""
    allowed = [str(value) for value in choices]
    counts = dict.fromkeys(allowed, 0)
    counts[OTHER] = 0
    for status, count in rows:
        key = str(status) if status is not None and str(status) in counts else OTHER
        counts[key] += int(count)
    return [({"status": status}, count) for status, count in counts.items()]


def render(families):
    """The whole answer: families [(name, help, samples)]."""
    lines = []
    for name, help_text, samples in families:
        lines += gauge(name, help_text, samples)
    return "\n".join(lines) + "\n"
