"""A Django 3.2 site that uses lxml in earnest (tests/integration/test_lxml.py):
XSLT with a Python extension function, XPath, XML Schema validation of a
POSTed document, lxml work in a background thread.  No database."""
SECRET_KEY = "lxml-test-site-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "lxmlsite.urls"
TEMPLATES = []
DATABASES = {}
USE_I18N = False
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}},
}
