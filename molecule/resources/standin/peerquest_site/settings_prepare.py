"""Settings for provisioning (migrate, seed) before the roles have run.

The deployed peerquest_logging/peerquest_health packages do not exist yet,
so only the base settings and URLs are used (Django's default logging).
"""

from peerquest_site.settings_base import (  # noqa: F401
    ALLOWED_HOSTS,
    BASE_DIR,
    DATABASES,
    DEBUG,
    DEFAULT_AUTO_FIELD,
    INSTALLED_APPS,
    LANGUAGE_CODE,
    MIDDLEWARE,
    ROOT_URLCONF,
    SECRET_KEY,
    TIME_ZONE,
    USE_I18N,
    USE_TZ,
    WSGI_APPLICATION,
)
