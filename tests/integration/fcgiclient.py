"""Minimal FastCGI client for direct protocol tests (run with /usr/bin/python3).

Copied from ../shared/notes/probes/fcgi/fcgiclient.py (the tech notes' probe client)."""
import socket, struct, time

BEGIN, ABORT, END, PARAMS, STDIN, STDOUT, STDERR, DATA, GET_VALUES, GET_VALUES_RESULT, UNKNOWN = range(1, 12)

def rec(t, rid, content=b"", pad=True):
    plen = (-len(content)) % 8 if pad else 0
    return struct.pack("!BBHHBx", 1, t, rid, len(content), plen) + content + b"\0" * plen

def nv(name, value):
    def L(n):
        return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
    name, value = name.encode() if isinstance(name, str) else name, value.encode() if isinstance(value, str) else value
    return L(len(name)) + L(len(value)) + name + value

def params_records(rid, params):
    blob = b"".join(nv(k, v) for k, v in params.items())
    out = b""
    for i in range(0, len(blob), 65535):
        out += rec(PARAMS, rid, blob[i:i + 65535])
    return out + rec(PARAMS, rid)

def stdin_records(rid, body, eof=True):
    out = b""
    for i in range(0, len(body), 65535):
        out += rec(STDIN, rid, body[i:i + 65535])
    return out + (rec(STDIN, rid) if eof else b"")

def connect(addr, timeout=10):
    if isinstance(addr, tuple):
        s = socket.create_connection(addr, timeout=timeout)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(timeout); s.connect(addr)
    return s

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("connection closed after %d/%d bytes" % (len(b), n))
        b += c
    return b

def read_record(s):
    v, t, rid, clen, plen = struct.unpack("!BBHHBx", recv_exact(s, 8))
    content = recv_exact(s, clen); recv_exact(s, plen)
    return t, rid, content

def request(s, rid=1, params=None, body=b"", keep=False, role=1, send_eof=True):
    p = {"REQUEST_METHOD": "POST" if body else "GET", "CONTENT_LENGTH": str(len(body)), "QUERY_STRING": ""}
    p.update(params or {})
    s.sendall(rec(BEGIN, rid, struct.pack("!HB5x", role, 1 if keep else 0)) + params_records(rid, p) + stdin_records(rid, body, send_eof))

def response(s, rid=1):
    out, err = b"", b""
    while True:
        t, r, c = read_record(s)
        if t == STDOUT: out += c
        elif t == STDERR: err += c
        elif t == END:
            app, proto = struct.unpack("!IB3x", c)
            return out, err, app, proto
        else:
            raise ValueError("unexpected record type %d" % t)

def do(addr, query="", body=b"", keep=False, sock=None, **kw):
    s = sock or connect(addr)
    request(s, params={"QUERY_STRING": query}, body=body, keep=keep, **kw)
    r = response(s)
    if not sock: s.close()
    return r
