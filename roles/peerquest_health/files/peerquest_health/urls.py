from django.urls import path

from . import views

urlpatterns = [
    path("health/", views.health_check, name="health_check"),
    path("health/quick/", views.quick_health, name="quick_health"),
]
