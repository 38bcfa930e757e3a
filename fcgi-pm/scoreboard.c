/*
 * scoreboard.c - the master's side of a pool's shared-memory scoreboard.
 *
 * The master creates the memfd, fills the header and owns slot assignment:
 * it writes a slot only while no worker owns it (before the fork, after the
 * reap), so every record keeps a single writer and the seqlock holds.
 * Workers write their own slot and threads; the master only reads those.
 */
#include <sys/mman.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi-pm.h"
#include "scoreboard.h"

/*
 * Create the scoreboard of pool POOL with NSLOTS slots of NTHREADS
 * threads each into *SB: a CLOEXEC memfd mapped shared, every slot free.
 * Returns 0, or -1 with errno set.
 */
int
sb_create(struct scoreboard *sb, const char *pool, uint32_t nslots, uint32_t nthreads)
{
	char name[64];

	sb->fd = -1;
	sb->hdr = NULL;
	sb->size = sb_total_size(nslots, nthreads);
	/* the name shows in /proc/PID/fd and maps: say whose it is */
	snprintf(name, sizeof(name), "fcgi-pm scoreboard %s", pool);
	if ((sb->fd = memfd_create(name, MFD_CLOEXEC)) == -1)
		return -1;
	if (ftruncate(sb->fd, (off_t)sb->size) == -1)
		goto fail;
	sb->hdr = mmap(NULL, sb->size, PROT_READ | PROT_WRITE, MAP_SHARED, sb->fd, 0);
	if (sb->hdr == MAP_FAILED) {
		sb->hdr = NULL;
		goto fail;
	}
	/* ftruncate zero-filled it: every slot is SB_WORKER_FREE */
	sb->hdr->nslots = nslots;
	sb->hdr->nthreads = nthreads;
	sb->hdr->slot_size = (uint32_t)sb_slot_size(nthreads);
	sb->hdr->version = SB_VERSION;
	atomic_thread_fence(memory_order_release);
	sb->hdr->magic = SB_MAGIC;
	return 0;
fail:
	sb_destroy(sb);
	return -1;
}

/* Unmap and close SB.  Workers that still map it keep their mapping. */
void
sb_destroy(struct scoreboard *sb)
{
	int saved = errno;

	if (sb->hdr != NULL)
		munmap(sb->hdr, sb->size);
	if (sb->fd != -1)
		close(sb->fd);
	sb->hdr = NULL;
	sb->fd = -1;
	errno = saved;
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Give SLOT to a worker about to be forked: clear it, bump its generation,
 * state STARTING.  The worker fills in its pid itself.  Call only while no
 * live process owns SLOT.
 */
void
sb_slot_assign(struct scoreboard *sb, uint32_t slot)
{
	struct sb_slot *s = sb_slot_at(sb->hdr, slot);
	uint32_t gen = s->generation + 1;

	sb_write_begin(&s->seq);
	memset((char *)s + sizeof(s->seq), 0, sb->hdr->slot_size - sizeof(s->seq));
	s->generation = gen;
	s->state = SB_WORKER_STARTING;
	s->start_us = now_us();
	sb_write_end(&s->seq);
}

/* Mark SLOT free after its worker was reaped (the generation stays). */
void
sb_slot_release(struct scoreboard *sb, uint32_t slot)
{
	struct sb_slot *s = sb_slot_at(sb->hdr, slot);

	sb_write_begin(&s->seq);
	s->state = SB_WORKER_FREE;
	s->pid = 0;
	sb_write_end(&s->seq);
}

/*
 * Copy SLOT's fields consistently into *OUT: retry while its writer is in
 * the middle of an update.  Never blocks for long: a writer holds the odd
 * count for a few stores; after many retries (a writer died mid-update)
 * the last copy is returned anyway.
 */
void
sb_slot_read(const struct scoreboard *sb, uint32_t slot, struct sb_slot_view *out)
{
	struct sb_slot *s = sb_slot_at(sb->hdr, slot);

	for (int tries = 0; tries < 1000; tries++) {
		uint32_t a = atomic_load_explicit(&s->seq, memory_order_acquire);

		out->state = s->state;
		out->pid = s->pid;
		out->generation = s->generation;
		out->start_us = s->start_us;
		out->rss_kb = s->rss_kb;
		out->requests = atomic_load_explicit(&s->requests, memory_order_relaxed);
		out->queue_timeouts = atomic_load_explicit(&s->queue_timeouts,
		    memory_order_relaxed);
		out->peer_gone = atomic_load_explicit(&s->peer_gone, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if ((a & 1) == 0 && a == atomic_load_explicit(&s->seq, memory_order_relaxed))
			return;
	}
}

/*
 * Copy thread THREAD of SLOT consistently into *OUT (as sb_slot_read).
 * Returns 0, or -1 if THREAD or SLOT is out of range.
 */
int
sb_thread_read(const struct scoreboard *sb, uint32_t slot, uint32_t thread,
    struct sb_thread *out)
{
	struct sb_thread *t;

	if (slot >= sb->hdr->nslots || thread >= sb->hdr->nthreads)
		return -1;
	t = &sb_slot_at(sb->hdr, slot)->threads[thread];
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t a = atomic_load_explicit(&t->seq, memory_order_acquire);

		memcpy((char *)out + sizeof(out->seq), (char *)t + sizeof(t->seq),
		    sizeof(*t) - sizeof(t->seq));
		atomic_thread_fence(memory_order_acquire);
		if ((a & 1) == 0 && a == atomic_load_explicit(&t->seq, memory_order_relaxed))
			break;
	}
	out->req_method[SB_METHOD_MAX - 1] = '\0';
	out->req_uri[SB_URI_MAX - 1] = '\0';
	return 0;
}
