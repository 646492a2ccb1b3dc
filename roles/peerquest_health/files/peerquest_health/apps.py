from django.apps import AppConfig


class PeerquestHealthConfig(AppConfig):
    name = "peerquest_health"
    verbose_name = "PeerQuest health checks"
