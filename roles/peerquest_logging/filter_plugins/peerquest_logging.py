"""Build and check the Django LOGGING dict from inventory data.

Kept in Python rather than Jinja so the rules are readable and unit-tested.
"""

import os.path

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FILE_HANDLER_CLASS = "peerquest_logging.handlers.PrivateWatchedFileHandler"
FORMATTER_CLASS = "peerquest_logging.formatters.ZonedFormatter"
# peerquest_logging_format: json gives every file handler this formatter.
JSON_FORMATTER = "json_lines"
JSON_FORMATTER_CLASS = "peerquest_logging.formatters.JsonLineFormatter"
FORMATS = ("text", "json")
MASK_FILTER = "mask_secrets"


def _present(items):
    """Entries not switched off with ``state: absent``."""
    return {name: spec for name, spec in (items or {}).items() if (spec or {}).get("state", "present") != "absent"}


def _level_problem(where, level):
    if level is not None and str(level).upper() not in LEVELS:
        return f"{where}: unknown log level {level!r}; use one of {', '.join(LEVELS)}"
    return None


def logging_problems(formatters, handlers, loggers, root, critical_handler=""):
    """Return one message per mistake, each naming the variable path."""
    problems = []
    if critical_handler and critical_handler not in _present(handlers):
        problems.append(
            f"peerquest_logging_critical_handler: no handler named {critical_handler!r} in peerquest_logging_handlers"
        )
    formatters = _present(formatters)
    handlers = _present(handlers)
    for name, spec in handlers.items():
        where = f"peerquest_logging_handlers.{name}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be a dict, got {type(spec).__name__}")
            continue
        problems.append(_level_problem(f"{where}.level", spec.get("level")))
        if "filename" not in spec and "class" not in spec:
            problems.append(f"{where}: needs 'filename' (a log file) or 'class' (any other handler)")
        filename = spec.get("filename")
        if filename is not None and (not filename or str(filename).endswith("/")):
            problems.append(f"{where}.filename: must name a file, got {filename!r}")
        formatter = spec.get("formatter")
        if formatter is not None and formatter not in formatters:
            problems.append(f"{where}.formatter: no formatter named {formatter!r} in peerquest_logging_formatters")
    for name, spec in list(_present(loggers).items()) + [("root", root or {})]:
        where = "peerquest_logging_root" if name == "root" else f"peerquest_logging_loggers.{name}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be a dict, got {type(spec).__name__}")
            continue
        problems.append(_level_problem(f"{where}.level", spec.get("level")))
        for handler in spec.get("handlers", []):
            if handler not in handlers:
                problems.append(f"{where}.handlers: no handler named {handler!r} in peerquest_logging_handlers")
    return [p for p in problems if p]


def logging_config(
    formatters,
    handlers,
    loggers,
    root,
    log_dir,
    file_mode,
    mask_keys,
    disable_existing=False,
    critical_handler="",
    log_format="text",
):
    """Render the dictConfig dict: file handlers become rotation-safe and private.

    A logger that does not propagate never reaches the root's handlers, so the
    critical handler is added to it: every CRITICAL lands in one file. With
    log_format json every file handler writes JSON lines (the console keeps
    its formatter).
    """
    filters = {}
    if mask_keys:
        filters[MASK_FILTER] = {"()": "peerquest_logging.filters.SecretMaskingFilter", "keys": list(mask_keys)}
    built_handlers = {}
    for name, spec in sorted(_present(handlers).items()):
        handler = {k: v for k, v in spec.items() if k not in ("state", "mask_secrets")}
        if "level" in handler:
            handler["level"] = str(handler["level"]).upper()
        if "filename" in handler:
            handler["filename"] = os.path.join(log_dir, handler["filename"])
            handler.setdefault("class", FILE_HANDLER_CLASS)
            if handler["class"] == FILE_HANDLER_CLASS:
                handler.setdefault("permissions", str(file_mode))
            if log_format == "json":
                handler["formatter"] = JSON_FORMATTER
        if mask_keys and spec.get("mask_secrets", True):
            handler["filters"] = [MASK_FILTER] + [f for f in handler.get("filters", []) if f != MASK_FILTER]
        built_handlers[name] = handler

    def _logger(spec, attach_critical=False):
        out = {k: v for k, v in spec.items() if k != "state"}
        if "level" in out:
            out["level"] = str(out["level"]).upper()
        if attach_critical and critical_handler in built_handlers and critical_handler not in out.get("handlers", []):
            out["handlers"] = [*out.get("handlers", []), critical_handler]
        return out

    built_formatters = {
        name: spec if "class" in spec or "()" in spec else {**spec, "class": FORMATTER_CLASS}
        for name, spec in _present(formatters).items()
    }
    if log_format == "json":
        built_formatters[JSON_FORMATTER] = {"class": JSON_FORMATTER_CLASS}
    config = {
        "version": 1,
        "disable_existing_loggers": bool(disable_existing),
        "filters": filters,
        # Timestamps carry their UTC offset unless a formatter names its own class.
        "formatters": built_formatters,
        "handlers": built_handlers,
        "loggers": {
            name: _logger(spec, attach_critical=spec.get("propagate", True) is False)
            for name, spec in sorted(_present(loggers).items())
        },
    }
    if root:
        config["root"] = _logger(root)
    return config


def logging_files(config):
    """Log files a config writes, with the lowest level each one receives."""
    files = []
    for name, handler in sorted(config.get("handlers", {}).items()):
        if "filename" in handler:
            files.append({"path": handler["filename"], "level": handler.get("level", "DEBUG"), "handler": name})
    return files


DEBUG_HANDLER = "debug_file"


def debug_handlers(handlers, enabled, filename, formatter="verbose"):
    """handlers plus the DEBUG file (peerquest_logging_debug_*) when enabled; the policy keeps DEBUG 7 days."""
    if not enabled:
        return dict(handlers)
    return {**handlers, DEBUG_HANDLER: {"level": "DEBUG", "filename": filename, "formatter": formatter}}


def debug_loggers(loggers, enabled, names):
    """loggers with each of names at DEBUG and writing the DEBUG file, when enabled.

    Their other handlers keep their own levels, so no other file receives a DEBUG line.
    """
    if not enabled:
        return dict(loggers)
    out = dict(loggers)
    for name in names:
        spec = dict(out.get(name) or {})
        spec["level"] = "DEBUG"
        spec["handlers"] = [*[h for h in spec.get("handlers", []) if h != DEBUG_HANDLER], DEBUG_HANDLER]
        out[name] = spec
    return out


class FilterModule:
    def filters(self):
        return {
            "peerquest_logging_problems": logging_problems,
            "peerquest_logging_config": logging_config,
            "peerquest_logging_files": logging_files,
            "peerquest_logging_debug_handlers": debug_handlers,
            "peerquest_logging_debug_loggers": debug_loggers,
        }
