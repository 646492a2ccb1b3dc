"""python3 -m peerquest_ops.trends: the same as the peerquest-trends command."""

import sys

from peerquest_ops.trends.cli import main

sys.exit(main())
