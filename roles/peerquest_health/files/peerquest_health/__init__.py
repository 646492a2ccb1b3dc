"""Health check endpoints for PeerQuest, deployed by the peerquest_health role.

Add ``"peerquest_health"`` to INSTALLED_APPS and
``path("", include("peerquest_health.urls"))`` to the root URLconf.
"""
