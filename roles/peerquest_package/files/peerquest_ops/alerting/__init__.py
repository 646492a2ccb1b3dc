"""peerquest-alert: send a PeerQuest alert to the channels configured for its severity.

cli        arguments, the three modes besides sending, exit statuses
schema     the settings file: every key, its kind, cross-key rules, the insecure-transport refusal
routing    which channels get a severity; sending one alert and the channel self-test
dedup      the same key at most once per window, with a count of what was suppressed
spool      deliveries a channel refused, retried with backoff by --flush-spool
message    subject, body and title every channel shares
channels   email and the HTTP channels (slack, discord, generic webhook); deliver()
output     what the command prints (secrets scrubbed)
"""
