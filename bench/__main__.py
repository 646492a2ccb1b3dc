"""python3 -m bench: every figure, medians of BENCH_RUNS runs, written to BENCH_DIR/results.json and printed.

BENCH_SIZES=10M,100M,1G   log sizes of the steady-state figure (the largest also gives first run and catch-up)
BENCH_RUNS=5              runs per figure (the median is reported)
BENCH_DIR=.cache/bench    where the generated logs are kept and reused while their size matches
BENCH_NEW_LINES=10000     new lines per steady-state run (five minutes of a busy app)
BENCH_CATCHUP_MB=75       the busy five minutes of the catch-up figure
BENCH_STORM=10000         CRITICAL lines of the alert storm (0: no storm)
BENCH_STORM_WINDOW=5      the storm's dedup window, seconds
BENCH_PACKAGE=DIR         measure another checkout's roles/peerquest_package/files (before/after)
"""

import sys

from bench.run import main

sys.exit(main())
