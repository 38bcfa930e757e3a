/* fcgi.c - placeholder, being written */
