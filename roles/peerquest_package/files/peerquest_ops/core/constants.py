"""Values the commands and the roles' checks must agree on.

This module is the one place they are spelled out. The commands import it;
the roles read it on the control machine (roles/peerquest_alerting's filter
plugin loads this file), so a preflight check and the program on the host can
never disagree on what a severity, a channel or an e-mail address is.
Keep it free of imports from the package: it is loaded on its own by file path.
"""

import re

# Alert severities, worst first.
SEVERITIES = ("CRITICAL", "WARNING", "INFO")

# Python logging levels, least severe first.
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Alert channels peerquest-alert can route a severity to.
CHANNELS = ("email", "slack", "discord", "webhook")

# One e-mail address: a local part without @, blanks, <>,; and a dotted domain
# of non-empty labels ending in at least two letters, or the host itself
# (localhost). "a@x..com" and "a@x.com\n" are refused. \Z, not $: $ would let a
# trailing newline through.
EMAIL_ADDRESS_PATTERN = r"^(?:[^@\s<>,;]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}|[^@\s<>,;]+@localhost)\Z"
EMAIL_ADDRESS = re.compile(EMAIL_ADDRESS_PATTERN)

# Exit status of peerquest-alert when a delivery failed and is queued for retry
# (sysexits EX_TEMPFAIL); callers treat it as "will be delivered".
EX_TEMPFAIL = 75
