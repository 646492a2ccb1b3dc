"""peerquest-logchain: a hash chain over the rotated log files (the plan's log integrity verification).

manifest   the chain: one JSON line per rotated or expired file, each naming the hash of the line before
rotated    which files on disk are rotated copies of a log, and the hash of their content
cli        record (logrotate's lastaction), expire (logrotate's preremove), verify
"""
