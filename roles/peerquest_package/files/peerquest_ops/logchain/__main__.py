"""python3 -m peerquest_ops.logchain: the same as the peerquest-logchain command."""

import sys

from peerquest_ops.logchain.cli import main

sys.exit(main())
