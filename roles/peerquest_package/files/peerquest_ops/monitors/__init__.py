"""peerquest-monitor: scheduled checks that turn logs and probes into alerts.

cli          arguments, the commands, exit statuses
schema       the settings file: what check-config refuses
base         Monitor: settings, state files, alerts handed to peerquest-alert, run records
runtime      the job log (monitoring.log lines on standard output) and state-file helpers
scan         the application log read from where it stopped, through rotation, in chunks
logline      a log line of either format (text or JSON lines): its searchable text, words and time
windows      one-minute buckets, sliding-window counts, failure rates, baselines
errors       the errors job: patterns, failure rates, the error rate against its baseline
performance  the performance job: slow operations by duration, degradation against the baseline
security     the security job: security events from the inventory, each in its own window
durations    timed operations in log lines: seconds and operation name
dbwatch      database failures within seconds (run by the follower), paged when they persist
probes       the health job: /health/quick/ and /health/ through core.http
integrity    the integrity job: the app's audit and its result for /health/
selfcheck    the selfcheck job: jobs on time, follower alive, directories, disk, channels
digest       the daily digest of INFO alerts
review       the monthly alert review
follow       the CRITICAL follower and a scan standing in for it
schedule     intervals and the jobs the self-check watches (also read by the role)
"""
