"""Settings of the blog example site (Django 3.2, as shipped by Debian 12).

No database: the pages are built from data in code.  For a real deployment
read SECRET_KEY from the environment (the pool's `env`) and keep DEBUG off.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SITE_NAME = "blog"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "blog-example-key-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "blog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "blog.urls"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
    ]},
}]

DATABASES = {}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Served by nginx (etc/nginx/django-site.conf, location /static/): run
# `manage.py collectstatic` to copy the files into STATIC_ROOT.
STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT", str(BASE_DIR / "collected-static"))

# Errors to stderr: fcgi-pm captures workers' stderr into the pool's log.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}},
}
