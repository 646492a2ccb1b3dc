"""Logging support for PeerQuest, deployed by the peerquest_logging role.

``peerquest_logging.settings`` holds the rendered Django ``LOGGING`` dict.
"""
