/* python.c - placeholder, being written */
