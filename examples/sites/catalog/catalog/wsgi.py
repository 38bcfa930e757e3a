"""WSGI entry point of the catalog site: fcgi-pm's pool loads `catalog.wsgi:application`.

The pool sets DJANGO_SETTINGS_MODULE=catalog.settings in its `env`; the default
here only helps when the module is imported by hand.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalog.settings")

application = get_wsgi_application()
