"""Test-support routes; importable without the deployed packages."""

from django.urls import path

from peerquest_site import views

urlpatterns = [
    path("standin/ping/", views.ping, name="standin-ping"),
    path("standin/log/", views.emit_log, name="standin-log"),
    path("standin/error/", views.raise_error, name="standin-error"),
    path("standin/login/", views.login, name="standin-login"),
]
