"""PeerQuest Ops: everything the roles run on a PeerQuest host.

    peerquest_ops.core        shared pieces: constants, atomic state files, locking, the HTTP
                              policy, the event log, configuration loading and secret scrubbing
    peerquest_ops.alerting    the peerquest-alert command (routing, dedup, spool, channels)

Installed by the peerquest_package role into the ops python directory; each
command on PATH is a /bin/sh wrapper that runs an entry file with
/usr/bin/python3 -I, so nothing is imported from the caller's directory or
environment.
"""
