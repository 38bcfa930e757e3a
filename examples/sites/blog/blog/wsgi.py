"""WSGI entry point of the blog site: fcgi-pm's pool loads `blog.wsgi:application`.

The pool sets DJANGO_SETTINGS_MODULE=blog.settings in its `env`; the default
here only helps when the module is imported by hand.
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blog.settings")

application = get_wsgi_application()
