"""Sampling under load (the plan's "Monitoring overhead" fix): a scan keeps to a CPU budget per run.

    budget = Budget("errors", 2000, follow_rules)   # scan() sets budget.backlog, the bytes it has to read
    fraction = budget.plan(bytes_read)   # None: read everything; else the share of the rest to sample

A scan measures its own CPU time as it reads. When what is left of the
backlog would take it past budget_ms, it samples from there on: every line
matching the follower's CRITICAL patterns (and every JSON record, whose text
is known only once parsed) is still read and counted in full, so no CRITICAL
line is lost; of the other lines only the first `fraction` of each chunk is
counted, and those counts are scaled by 1 / fraction (an estimate, said as
such in the job's log line). A budget of 0 samples from the first chunk.
"""

import time

from peerquest_ops.monitors.runtime import log

# CPU seconds per byte assumed before a chunk has been measured (about 50 MB/s).
ASSUMED_SECONDS_PER_BYTE = 2e-8
# A sample never gets smaller than this share of the lines.
MIN_FRACTION = 0.01


class Budget:
    def __init__(self, job, budget_ms, critical_rules, backlog=0):
        self.job = job
        self.budget_ms = budget_ms
        self.critical = critical_rules
        self.backlog = max(0, backlog)
        self.started = time.process_time()
        self.fraction = None
        self.sampled_from = None  # bytes read in full before sampling started
        self.kept_lines = 0  # lines read in full while sampling (the follower's patterns, JSON)
        self.sampled_bytes = 0  # bytes of the rest that were counted (and scaled)
        self.skipped_bytes = 0  # bytes of the rest that were not

    def plan(self, done):
        """Before each chunk: the share of the rest to count from here on, or None to count everything."""
        if self.fraction is not None:
            return self.fraction
        used = time.process_time() - self.started
        per_byte = used / done if done else ASSUMED_SECONDS_PER_BYTE
        need = per_byte * max(0, self.backlog - done)
        allowed = self.budget_ms / 1000.0
        if used + need <= allowed:
            return None
        self.fraction = min(1.0, max(MIN_FRACTION, (allowed - used) / need if need else 1.0))
        self.sampled_from = done
        return self.fraction

    def report(self):
        """One WARNING line in the job's log when the scan sampled."""
        if self.fraction is None:
            return
        rest = self.sampled_bytes + self.skipped_bytes
        share = 100.0 * self.sampled_bytes / rest if rest else 100.0
        log(
            f"WARNING {self.job}: backlog of {self.backlog / 1e6:.1f} MB over the CPU budget of {self.budget_ms} ms; "
            f"sampled {share:.1f}% of {rest / 1e6:.1f} MB after the first {self.sampled_from / 1e6:.1f} MB "
            f"(counts scaled x{1 / self.fraction:.1f}); {self.kept_lines} lines matching the follower's patterns "
            "or JSON read in full"
        )
