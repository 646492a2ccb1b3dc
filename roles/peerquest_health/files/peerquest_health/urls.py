from django.urls import path

from . import metrics, views

urlpatterns = [
    path("health/", views.health_check, name="health_check"),
    path("health/quick/", views.quick_health, name="quick_health"),
    path("health/metrics/", metrics.metrics, name="health_metrics"),
]
