"""Runtime settings: the shared base plus what the Ansible roles deploy.

LOGGING and the peerquest_health app come from /opt/peerquest-ops/python
(PYTHONPATH of peerquest.service). They are imported unguarded on purpose:
if the deployment is missing, the application must fail loudly.
"""

from peerquest_logging.settings import LOGGING  # noqa: F401

from peerquest_site.settings_base import (  # noqa: F401
    ALLOWED_HOSTS,
    BASE_DIR,
    DATABASES,
    DEBUG,
    DEFAULT_AUTO_FIELD,
    LANGUAGE_CODE,
    MIDDLEWARE,
    SECRET_KEY,
    TIME_ZONE,
    USE_I18N,
    USE_TZ,
    WSGI_APPLICATION,
)
from peerquest_site.settings_base import INSTALLED_APPS as BASE_INSTALLED_APPS

INSTALLED_APPS = [*BASE_INSTALLED_APPS, "peerquest_health"]
ROOT_URLCONF = "peerquest_site.urls"
