"""Record rotated log files in a hash chain and verify it.

    peerquest-logchain --config FILE record LOG [LOG ...]   logrotate's lastaction: chain each new rotated copy
                                                            of LOG, then verify everything
    peerquest-logchain --config FILE expire ROTATED          logrotate's preremove: retention removes ROTATED
    peerquest-logchain --config FILE verify                  check the chain and every file it names

verify prints one line per problem, naming the file: an entry changed, removed,
inserted or reordered in the manifest; a rotated file whose content changed; a
rotated file missing that retention did not remove. Exit status: 0 all intact,
1 a problem was found (record also sends a CRITICAL alert through the
configured alert command), 2 bad usage or settings.

What is hashed: the content of the rotated file, uncompressed. logrotate
compresses a rotated file one rotation later (delaycompress) and after the
postrotate script, so hashing the bytes on disk would change under the chain;
the content does not. verify reads name or name.gz, whichever exists.

Settings (JSON): manifest (path), alert_command (peerquest-alert's path, "" for
none), alert_user (the account it runs as when this runs as root).
"""

import argparse
import os
import pwd
import subprocess
import sys

from peerquest_ops.core.config import ConfigError, load
from peerquest_ops.logchain import manifest, rotated

PROGRAM = "peerquest-logchain"
SETTINGS = {"manifest": str, "alert_command": str, "alert_user": str}


def say(text, error=False):
    print(f"{PROGRAM}: {text}", file=sys.stderr if error else sys.stdout)


def load_settings(path):
    settings = load(path)
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: must be a JSON object")
    problems = [
        f"{key}: missing or not a {kind.__name__}"
        for key, kind in SETTINGS.items()
        if not isinstance(settings.get(key), kind)
    ]
    if not problems and not os.path.isabs(settings["manifest"]):
        problems.append(f"manifest: must be an absolute path, got {settings['manifest']!r}")
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return settings


def latest(entries):
    """The last entry of each file."""
    out = {}
    for entry in entries:
        out[entry.get("file")] = entry
    return out


def problems_of(path):
    """Every problem with the chain in path and the files it names."""
    entries, problems = manifest.read(path)
    for name, entry in latest(entries).items():
        if entry.get("event") != "rotated":
            continue
        where = rotated.on_disk(name)
        if where is None:
            problems.append(f"{name}: missing (rotated {entry.get('time')}; retention did not remove it)")
            continue
        digest, _ = rotated.readable_hash(where)
        if digest != entry.get("sha256"):
            problems.append(f"{where}: changed since it was rotated {entry.get('time')}")
    return problems


def alert(settings, problems):
    """A CRITICAL alert naming the problems; as the alert account when run as root."""
    command = settings["alert_command"]
    if not command:
        return
    kwargs = {}
    if os.geteuid() == 0 and settings["alert_user"]:
        account = pwd.getpwnam(settings["alert_user"])
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    text = "Log integrity check failed:\n" + "\n".join(problems)
    result = subprocess.run(
        [command, "--severity", "CRITICAL", "--key", "logchain:" + "|".join(sorted(problems))[:200]],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )
    if result.returncode not in (0, 75):
        say(f"alert not sent (exit {result.returncode}): {result.stderr.strip()}", error=True)


def report(settings, problems):
    for problem in problems:
        say(problem, error=True)
    if problems:
        alert(settings, problems)
        return 1
    return 0


def record(settings, logs):
    path = settings["manifest"]
    known = latest(manifest.read(path)[0])
    added = 0
    for log in logs:
        for name in rotated.rotated_copies(log):
            if name in known:
                continue
            digest, size = rotated.readable_hash(rotated.on_disk(name))
            if digest is None:
                say(f"{name}: cannot be read to record it: {size}", error=True)
                continue
            manifest.append(path, "rotated", log, name, digest, size)
            added += 1
    say(f"recorded {added} rotated file(s) in {path}")
    return report(settings, problems_of(path))


def expire(settings, target):
    path = settings["manifest"]
    if not target.endswith(rotated.GZ) and os.path.exists(target + rotated.GZ):
        # logrotate also calls preremove for the uncompressed copy it just compressed: not a removal.
        return 0
    name = rotated.base_name(target)
    entry = latest(manifest.read(path)[0]).get(name)
    digest, size = rotated.readable_hash(target)
    problems = []
    if entry and entry.get("event") == "rotated" and digest != entry.get("sha256"):
        problems.append(f"{target}: changed since it was rotated {entry.get('time')} (now removed by retention)")
    manifest.append(path, "expired", entry.get("log", "") if entry else "", name, digest or "", size or 0)
    report(settings, problems)
    # logrotate removes the file whatever this says: the problem is reported, never a reason to keep it.
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, metavar="FILE", help="settings file (required)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("record", help="chain new rotated copies of each LOG, then verify").add_argument(
        "logs", nargs="+", metavar="LOG"
    )
    sub.add_parser("expire", help="record that retention removes ROTATED").add_argument("target", metavar="ROTATED")
    sub.add_parser("verify", help="check the chain and every file it names")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if os.getuid() == 0 and os.geteuid() != 0:
        # logrotate's "su" runs its scripts with the log owner's effective ids; the manifest is root's.
        os.setegid(0)
        os.seteuid(0)
    os.umask(0o027)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        say(str(exc), error=True)
        return 2
    try:
        if args.command == "record":
            return record(settings, args.logs)
        if args.command == "expire":
            return expire(settings, args.target)
        problems = problems_of(settings["manifest"])
        if not problems:
            count = len(manifest.read(settings["manifest"])[0])
            say(f"{settings['manifest']}: {count} entries, chain intact, every rotated file unchanged")
        for problem in problems:
            say(problem, error=True)
        return 1 if problems else 0
    except OSError as exc:
        say(f"{exc.filename or 'file'}: {exc.strerror}", error=True)
        return 2
