"""broken - a WSGI module that fails at import (python_init must log why)."""


def _configure():
    raise RuntimeError("broken at import time")


_configure()
