"""Runtime URLs: deployed health endpoints plus the test-support routes."""

from django.urls import include, path

from peerquest_site.urls_base import urlpatterns as _standin_patterns

urlpatterns = [
    path("", include("peerquest_health.urls")),
    *_standin_patterns,
]
