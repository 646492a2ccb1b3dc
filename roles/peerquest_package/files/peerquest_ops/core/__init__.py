"""Shared core of the host-side package; every command builds on these modules.

    constants   severities, log levels, channels, the e-mail address pattern (also read by the roles)
    state       read_json / write_json: atomic, durable JSON state files
    locking     locked(): an exclusive fcntl lock as a context manager
    http        request(): the one HTTP policy (no redirects, timeouts, masked errors)
    eventlog    EventLog: one line per event in monitoring.log
    config      load() for JSON settings, ConfigError, the secrets registry and scrub()
    timefmt     time stamps shared by the commands and their messages

Only the standard library is used: the package runs under the host's /usr/bin/python3.
"""
