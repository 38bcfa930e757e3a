"""The download's bytes: deterministic, so a test recomputes the sha256
without trusting the server (shared with tests/integration/wscommon.py)."""
import hashlib

CHUNK = 64 * 1024


def chunk(i):
    """The I-th 64 KiB chunk: a sha256 chain seeded by I, repeated."""
    seed = hashlib.sha256(b"fcgi-pm-%d" % i).digest()
    return (seed * (CHUNK // len(seed)))


def chunks(size):
    """SIZE bytes in 64 KiB chunks."""
    i = 0
    while size > 0:
        c = chunk(i)[:size]
        size -= len(c)
        i += 1
        yield c


def digest(size):
    h = hashlib.sha256()
    for c in chunks(size):
        h.update(c)
    return h.hexdigest()
