"""The monitors' figures for node_exporter's textfile collector.

textfile  the Prometheus text format, written atomically into the collector's directory
names     every metric name and its help text (the names the recording and alerting rules use)
runs      each scheduled job's last run, last success, duration and exit code, with the job's own figures
figures   what a job adds: pattern matches and thresholds, slow operations, the integrity audit
live      the follower's heartbeat and the database failures, written at most every few seconds

Settings: monitors.json "metrics": {"textfile_dir": DIR}; an empty or missing
directory turns them off. A directory that cannot be written never stops a
monitor: it is said once in the job log and the job carries on.
"""
