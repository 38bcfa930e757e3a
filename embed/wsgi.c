/* wsgi.c - placeholder, being written */
