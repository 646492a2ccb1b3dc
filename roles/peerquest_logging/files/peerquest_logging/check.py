"""Check a rendered LOGGING settings module before it is installed.

Usage: python check.py SETTINGS_FILE LOG_DIR

Loads the module with the app's own Python, then runs
``logging.config.dictConfig`` on a copy whose file names point into a
scratch directory, so checking never creates or touches a real log file.
Exits non-zero with a message naming what is wrong.
"""

import copy
import logging
import logging.config
import logging.handlers
import os
import runpy
import sys
import tempfile

# The module refers to peerquest_logging.*; make the package next to this file
# importable even when the interpreter's PYTHONPATH lacks it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check(settings_file, log_dir):
    logging_dict = runpy.run_path(settings_file).get("LOGGING")
    if not isinstance(logging_dict, dict):
        raise ValueError("the module defines no LOGGING dict")
    if logging_dict.get("version") != 1:
        raise ValueError("LOGGING['version'] must be 1")
    trial = copy.deepcopy(logging_dict)
    log_dir = os.path.abspath(log_dir)
    with tempfile.TemporaryDirectory() as scratch:
        for name, handler in trial.get("handlers", {}).items():
            filename = handler.get("filename")
            if filename is None:
                continue
            if os.path.dirname(os.path.abspath(filename)) != log_dir:
                raise ValueError(f"handler {name!r} writes {filename}, outside {log_dir}")
            handler["filename"] = os.path.join(scratch, os.path.basename(filename))
        logging.config.dictConfig(trial)
        try:
            for name in trial.get("handlers", {}):
                # logging.getHandlerByName() only exists from Python 3.12 on.
                handler = logging._handlers.get(name)  # noqa: SLF001
                if isinstance(handler, logging.FileHandler) and not isinstance(
                    handler, logging.handlers.WatchedFileHandler
                ):
                    raise ValueError(
                        f"handler {name!r} is a plain {type(handler).__name__}: it would keep writing "
                        "into the rotated file; use a WatchedFileHandler"
                    )
        finally:
            logging.shutdown()


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        check(argv[1], argv[2])
    except Exception as exc:  # noqa: BLE001 - any failure means the module must not land
        # dictConfig wraps the real reason ("Unknown level: ...") in its own error.
        reasons = []
        while exc is not None:
            reasons.append(f"{type(exc).__name__}: {exc}")
            exc = exc.__cause__
        print(f"invalid LOGGING settings in {argv[1]}: {' <- '.join(reasons)}", file=sys.stderr)
        return 1
    print(f"LOGGING settings in {argv[1]} load with dictConfig")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
