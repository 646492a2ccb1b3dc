"""python3 -m peerquest_ops.history: the same as the peerquest-history command."""

import sys

from peerquest_ops.history.cli import main

sys.exit(main())
