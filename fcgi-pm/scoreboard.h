/*
 * scoreboard.h - the shared-memory layout between fcgi-pm and fcgi-pm-worker.
 *
 * This header is the only thing the two programs share: it is an ABI.
 * Bump SB_VERSION on any change; a worker refuses a scoreboard whose
 * magic or version differs from its own.
 *
 * One scoreboard per pool: a memfd created by the master, mapped
 * MAP_SHARED by the master and passed to each worker as a file descriptor
 * (--scoreboard FD:SLOT).  Layout:
 *
 *   struct sb_header
 *   slot 0: struct sb_slot + nthreads x struct sb_thread
 *   slot 1: ...
 *
 * Each worker process owns one slot; each of its request threads owns one
 * sb_thread in it.  Writers never lock: every record has a sequence
 * counter that the writer makes odd before it writes and even after
 * (a seqlock); a reader copies the record and retries while the counter
 * was odd or changed.  A writer is always the only writer of its record.
 */
#ifndef FCGI_PM_SCOREBOARD_H
#define FCGI_PM_SCOREBOARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_MAGIC	0x46435042u	/* "FCPB" */
#define SB_VERSION	3u
#define SB_METHOD_MAX	16
#define SB_URI_MAX	256

/* A worker process's state, as php-fpm's status page shows it. */
enum sb_worker_state {
	SB_WORKER_FREE = 0,	/* slot unused */
	SB_WORKER_STARTING,	/* forked, loading the app */
	SB_WORKER_READY,	/* app loaded, serving */
	SB_WORKER_ENDING,	/* told to stop, finishing in-flight requests */
};

/* A request thread's state. */
enum sb_thread_state {
	SB_THREAD_IDLE = 0,	/* waiting for a request (also: kept-alive connection idle) */
	SB_THREAD_READING,	/* reading the request's params */
	SB_THREAD_BUSY,		/* running the application */
};

struct sb_header {
	uint32_t magic;
	uint32_t version;
	uint32_t nslots;	/* max_children (+ spare for rolling restarts) */
	uint32_t nthreads;	/* request threads per worker */
	uint32_t slot_size;	/* bytes from one slot to the next */
	uint32_t reserved;
};

struct sb_thread {
	_Atomic uint32_t seq;		/* seqlock, odd while being written */
	uint32_t state;			/* enum sb_thread_state */
	uint64_t thread_id;		/* pthread_self(), as faulthandler prints it */
	uint64_t requests;		/* requests this thread finished */
	/* the current request (state READING or BUSY) */
	uint64_t req_start_us;		/* CLOCK_REALTIME, microseconds */
	uint64_t req_content_length;
	char req_method[SB_METHOD_MAX];	/* NUL-terminated, truncated */
	char req_uri[SB_URI_MAX];	/* REQUEST_URI, NUL-terminated, truncated */
	/* the last finished request */
	uint64_t last_end_us;		/* CLOCK_REALTIME, microseconds */
	uint64_t last_duration_us;
	uint64_t last_cpu_us;		/* thread CPU time the request used */
	uint64_t last_rss_kb;		/* worker's peak RSS after it */
};

struct sb_slot {
	_Atomic uint32_t seq;		/* seqlock over the fields below */
	uint32_t state;			/* enum sb_worker_state */
	int32_t pid;
	uint32_t generation;		/* bumped by the master each time the slot is reused */
	uint64_t start_us;		/* CLOCK_REALTIME, microseconds */
	uint64_t rss_kb;		/* current RSS, updated after each request */
	_Atomic uint64_t requests;	/* requests this process finished, all threads */
	_Atomic uint64_t queue_timeouts; /* of them, answered 503 by queue_timeout */
	_Atomic uint64_t peer_gone;	/* not among them: dropped unrun, the web
					 * server had closed the connection (v3) */
	struct sb_thread threads[];	/* header->nthreads of them */
};

static inline size_t sb_slot_size(uint32_t nthreads)
{
	size_t s = sizeof(struct sb_slot) + (size_t)nthreads * sizeof(struct sb_thread);
	return (s + 63) & ~(size_t)63;	/* a cache line per slot start */
}

static inline size_t sb_total_size(uint32_t nslots, uint32_t nthreads)
{
	return ((sizeof(struct sb_header) + 63) & ~(size_t)63) +
	    (size_t)nslots * sb_slot_size(nthreads);
}

static inline struct sb_slot *sb_slot_at(struct sb_header *h, uint32_t i)
{
	return (struct sb_slot *)((char *)h + ((sizeof(struct sb_header) + 63) & ~(size_t)63) +
	    (size_t)i * h->slot_size);
}

/* Writer side of the seqlock: begin makes the counter odd, end even again. */
static inline void sb_write_begin(_Atomic uint32_t *seq)
{
	atomic_fetch_add_explicit(seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static inline void sb_write_end(_Atomic uint32_t *seq)
{
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add_explicit(seq, 1, memory_order_relaxed);
}

#endif
