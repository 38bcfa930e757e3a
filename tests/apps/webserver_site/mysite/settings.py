"""Settings of the web-server test site (tests/integration/test_nginx.py,
test_lighttpd.py, test_apache.py, test_caddy.py, test_scaleout.py).

Django 3.2 as shipped by Debian 12; no database, no templates.
"""
import os

SECRET_KEY = "webserver-test-site-not-for-production"
DEBUG = False
# the scale-out test reaches the site on namespace addresses (10.x.y.z)
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "mysite.urls"
DATABASES = {}
USE_I18N = False
USE_TZ = True
APPEND_SLASH = True

# Uploads: request.POST of an urlencoded form is bounded by this; raw
# uploads are read in chunks by the view and never hit it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 32 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = os.environ.get("MYSITE_UPLOAD_DIR") or None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}},
}
