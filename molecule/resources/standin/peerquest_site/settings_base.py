"""Settings shared by every stand-in configuration (re-exported by name from settings*.py).

Nothing here depends on the packages the Ansible roles deploy, so this module
is importable on a freshly prepared host (see settings_prepare.py).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Test-only fallback: the stand-in never holds real data.
SECRET_KEY = os.environ.get("PEERQUEST_SECRET_KEY", "standin-test-only-secret-key-not-for-production")
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "applications",
    "quests",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

ROOT_URLCONF = "peerquest_site.urls_base"
WSGI_APPLICATION = "peerquest_site.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("PEERQUEST_DB_PATH", "/srv/peerquest/db.sqlite3"),
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
