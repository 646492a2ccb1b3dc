"""Metric names and help texts: the names the recording and alerting rules use.

Label values are bounded: a job name, a pattern name from the settings.
"""

MONITOR_LAST_RUN = "peerquest_monitor_last_run_timestamp_seconds"
MONITOR_LAST_SUCCESS = "peerquest_monitor_last_success_timestamp_seconds"
MONITOR_DURATION = "peerquest_monitor_duration_seconds"
MONITOR_EXIT_CODE = "peerquest_monitor_exit_code"
INTEGRITY_LAST_AUDIT = "peerquest_integrity_last_audit_timestamp_seconds"
INTEGRITY_ISSUES = "peerquest_integrity_issues"
PATTERN_MATCHES = "peerquest_log_pattern_matches"
PATTERN_THRESHOLD = "peerquest_log_pattern_threshold"
SLOW_OPERATIONS = "peerquest_slow_operations"
DATABASE_ERRORS = "peerquest_database_errors"
FOLLOWER_HEARTBEAT = "peerquest_follower_heartbeat_timestamp_seconds"

HELP = {
    MONITOR_LAST_RUN: "When the scheduled job last finished (Unix time), whatever its outcome.",
    MONITOR_LAST_SUCCESS: "When the scheduled job last finished with exit code 0 (Unix time).",
    MONITOR_DURATION: "How long the job's last run took, in seconds.",
    MONITOR_EXIT_CODE: "Exit code of the job's last run (0 done; 1 the self-check found a problem or the job failed).",
    INTEGRITY_LAST_AUDIT: "When the last completed data-integrity audit ran (Unix time); a failed audit keeps it.",
    INTEGRITY_ISSUES: "Issues the last completed data-integrity audit found.",
    PATTERN_MATCHES: "Log lines matching the errors job's pattern within its window.",
    PATTERN_THRESHOLD: "Matches of the pattern within the window that are tolerated; more alert.",
    SLOW_OPERATIONS: "Timed operations slower than the slow limit within the performance job's window.",
    DATABASE_ERRORS: "Database connection failures within the database window.",
    FOLLOWER_HEARTBEAT: "When the CRITICAL follower last finished a pass (Unix time).",
}
