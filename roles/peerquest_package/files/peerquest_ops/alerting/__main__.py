"""python3 -m peerquest_ops.alerting: the same as the peerquest-alert command."""

import sys

from peerquest_ops.alerting.cli import main

sys.exit(main())
