"""python3 -m peerquest_ops.monitors: the same as the peerquest-monitor command."""

import sys

from peerquest_ops.monitors.cli import main

sys.exit(main())
