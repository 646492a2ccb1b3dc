"""/health/metrics/: business counts for Prometheus (text format 0.0.4), behind /health/'s token.

    peerquest_quests{status="open"} 12                 one gauge per entry of the settings' "metrics",
    peerquest_applications{status="approved"} 40       labelled by the status field's choices (+ "other")
    peerquest_quest_participants{status="joined"} 31
    peerquest_database_up 1

Prometheus computes the rates (quests created: the sum's increase; completed:
the "completed" series' increase). Which models and fields are counted comes
from the settings (peerquest_health_metrics_models), so a PeerQuest whose
models are named differently is counted too. Every status of the field's
choices is always present (0 when none), so label values are bounded and
series do not come and go. A failing query is "peerquest_database_up 0" or a
missing gauge, never an exception's text; the reason goes to the app's log.
"""

from django.apps import apps
from django.db.models import Count
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import config as health_config
from . import exposition
from .views import _database, _failed, _token_ok

PREFIX = "peerquest_"


def _text(body, status=200):
    return HttpResponse(body, status=status, content_type=exposition.CONTENT_TYPE)


def _choices(field):
    return [value for value, _label in (getattr(field, "flatchoices", None) or [])]


def _family(name, spec):
    """(metric name, help, samples) for one entry: counts per status in one GROUP BY query."""
    model = apps.get_model(spec["model"])
    field = model._meta.get_field(spec["status_field"])
    rows = model.objects.order_by().values_list(field.attname).annotate(count=Count("pk"))
    help_text = f"Rows of {spec['model']} by {spec['status_field']} (its choices, and other)."
    return (PREFIX + name, help_text, exposition.by_status(_choices(field), rows))


@never_cache
@require_GET
def metrics(request):
    try:
        conf = health_config.load()
    except Exception as exc:  # noqa: BLE001 - no settings: nothing to say, and nothing about why
        _failed("settings", exc)
        return _text("# unavailable\n", status=503)
    if not _token_ok(request, conf):
        return _text("# unauthorized\n", status=401)
    families = []
    try:
        _database()
        up = 1
    except Exception as exc:  # noqa: BLE001
        _failed("metrics database", exc)
        up = 0
    if up:
        for name, spec in sorted((conf.get("metrics") or {}).items()):
            try:
                families.append(_family(name, spec))
            except Exception as exc:  # noqa: BLE001 - one broken entry leaves the others
                _failed(f"metrics {name}", exc)
    families.append((PREFIX + "database_up", "Whether the database answered SELECT 1 (1) or not (0).", [({}, up)]))
    return _text(exposition.render(families))
