/*
 * fuzz_conf.c - libFuzzer target for the configuration loader: each input
 * is a main configuration file (conf_load() reads it from a memfd through
 * /proc/self/fd).  A load either succeeds or fails with messages of the
 * form "FILE:LINE: ..." (FILE the main file or a site file of the
 * include_dir it names); it never crashes, and conf_free() releases all.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fcgi-pm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char errbuf[8192];
	char path[64];
	struct conf *c;
	int fd;

	if ((fd = memfd_create("fuzz.conf", MFD_CLOEXEC)) == -1)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	c = conf_load(path, errbuf, sizeof(errbuf));
	if (c == NULL) {
		/* a failed load always says why, "FILE[:LINE]: ..." */
		assert(errbuf[0] == '/' && strchr(errbuf, ':') != NULL);
	} else {
		assert(c->npools > 0);
		conf_free(c);
	}
	close(fd);
	return 0;
}
