"""rlbproto: an independent Python implementation of the resumelb wire protocol (version 1).

Written from docs/protocol.md for the end-to-end tests; it shares no code with the C++
codec (common/frame_codec.{h,cc}). Standard library only (Python 3.11).

A frame is ``u32 rno | u32 length | u8 kind | body[length - 1]``, all big-endian.

* ``encode_*`` return one complete frame as ``bytes``.
* ``FrameReader`` splits a byte stream into ``(rno, kind, payload)`` frames, checking the
  framing rules (length, known kind, rno 0 exactly for connection kinds).
* ``parse_*`` decode one payload (the bytes after the kind byte).
* ``Connection`` is a blocking client that plays the LB side against a worker (or, given an
  accepted socket and role "worker", the worker side against an LB).
* ``link_proof`` computes a PROOF (docs/protocol.md, "Link authentication"); a Connection
  given a ``secret`` sends CHALLENGE after its HELLO and answers and checks the peer's.

Every decode problem raises ``ProtocolError`` with a message naming it; the messages use
the same key phrases as the C++ codec (the shared vectors check both).

Text conventions: environ names/values, status and header names/values are latin-1 (PEP
3333 native strings); request classes, résumé classes and HELLO strings are UTF-8 with
``surrogateescape`` (so arbitrary bytes survive a round trip).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import math
import os
import select
import socket
import struct
import time
from typing import Iterable, Mapping, Union

PROTOCOL_VERSION = 1
MAGIC = b"RSLB"

HELLO = 0x01
RESUME = 0x02
KEEPALIVE = 0x03
GOAWAY = 0x04
CHALLENGE = 0x05
PROOF = 0x06
REQUEST = 0x10
REQUEST_BODY = 0x11
REQUEST_END = 0x12
CANCEL = 0x13
RESPONSE = 0x20
RESPONSE_BODY = 0x21
RESPONSE_END = 0x22

KIND_NAMES = {
    HELLO: "HELLO", RESUME: "RESUME", KEEPALIVE: "KEEPALIVE", GOAWAY: "GOAWAY",
    CHALLENGE: "CHALLENGE", PROOF: "PROOF",
    REQUEST: "REQUEST", REQUEST_BODY: "REQUEST_BODY", REQUEST_END: "REQUEST_END",
    CANCEL: "CANCEL", RESPONSE: "RESPONSE", RESPONSE_BODY: "RESPONSE_BODY",
    RESPONSE_END: "RESPONSE_END",
}
KINDS = {name: kind for kind, name in KIND_NAMES.items()}
CONNECTION_KINDS = frozenset({HELLO, RESUME, KEEPALIVE, GOAWAY, CHALLENGE, PROOF})
EMPTY_KINDS = frozenset({KEEPALIVE, GOAWAY, REQUEST_END, CANCEL})
BODY_KINDS = frozenset({REQUEST_BODY, RESPONSE_BODY})

OUTCOMES = {0: "complete", 1: "failed"}

# Limits (docs/protocol.md, "Limits").
HEADER_SIZE = 8
MAX_PAYLOAD = 16 << 20
MAX_BODY_CHUNK = 1 << 20
PREFERRED_CHUNK = 64 << 10
MAX_ENVIRON_ENTRIES = 4096
MAX_ENVIRON_BYTES = 1 << 20
MAX_HEADERS = 1024
MAX_HEADER_BYTES = 256 << 10
MAX_RESUME_ENTRIES = 1 << 20
MAX_CLASS_BYTES = 4096
MAX_TEXT_FIELD = 4096
NONCE_BYTES = 32   # a CHALLENGE's nonce, exactly
PROOF_BYTES = 32   # a PROOF's HMAC-SHA256, exactly
PROOF_LABEL = b"resumelb-link-v1"

_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")
_HEADER = struct.Struct(">IIB")

Text = Union[str, bytes]


class ProtocolError(Exception):
    """A malformed frame or message."""


# --- helpers ---------------------------------------------------------------------------

def _utf8(s: Text) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def _latin1(s: Text) -> bytes:
    return s if isinstance(s, bytes) else s.encode("latin-1")


def _from_utf8(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _from_latin1(b: bytes) -> str:
    return b.decode("latin-1")


def _u32(v: int) -> bytes:
    return _U32.pack(v)


def _bytes(b: bytes) -> bytes:
    return _U32.pack(len(b)) + b


def _pairs(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    pairs = list(pairs)
    return _U32.pack(len(pairs)) + b"".join(_bytes(k) + _bytes(v) for k, v in pairs)


def _frame(rno: int, kind: int, body: bytes = b"") -> bytes:
    return _HEADER.pack(rno, len(body) + 1, kind) + body


def _items(mapping_or_pairs) -> list:
    if isinstance(mapping_or_pairs, Mapping):
        return list(mapping_or_pairs.items())
    return list(mapping_or_pairs)


# --- encoding --------------------------------------------------------------------------

def encode_hello(role: Text = "lb", pid: int | None = None, software: Text = "rlbproto 1",
                 version: int = PROTOCOL_VERSION) -> bytes:
    if pid is None:
        pid = os.getpid()
    return _frame(0, HELLO, MAGIC + _u32(version) + _u32(pid) + _bytes(_utf8(role)) +
                  _bytes(_utf8(software)))


def encode_resume(resume) -> bytes:
    """resume: dict or list of (class, score); classes str (UTF-8) or bytes."""
    entries = _items(resume)
    return _frame(0, RESUME, _u32(len(entries)) +
                  b"".join(_bytes(_utf8(c)) + _F64.pack(float(s)) for c, s in entries))


def encode_keepalive() -> bytes:
    return _frame(0, KEEPALIVE)


def encode_goaway() -> bytes:
    return _frame(0, GOAWAY)


def encode_challenge(nonce: bytes) -> bytes:
    return _frame(0, CHALLENGE, bytes(nonce))


def encode_proof(proof: bytes) -> bytes:
    return _frame(0, PROOF, bytes(proof))


def link_proof(secret: bytes, role: Text, peer_nonce: bytes, own_nonce: bytes) -> bytes:
    """PROOF sent by `role` ("lb" for the connecting side, "worker"):
    HMAC-SHA256(secret, "resumelb-link-v1" || role || peer_nonce || own_nonce)."""
    return hmac.new(bytes(secret), PROOF_LABEL + _utf8(role) + bytes(peer_nonce) +
                    bytes(own_nonce), hashlib.sha256).digest()


def encode_request(rno: int, request_class: Text, environ) -> bytes:
    """environ: dict or list of (name, value); str values are encoded latin-1."""
    pairs = [(_latin1(k), _latin1(v)) for k, v in _items(environ)]
    return _frame(rno, REQUEST, _bytes(_utf8(request_class)) + _pairs(pairs))


def encode_request_body(rno: int, data: bytes) -> bytes:
    return _frame(rno, REQUEST_BODY, bytes(data))


def encode_request_end(rno: int) -> bytes:
    return _frame(rno, REQUEST_END)


def encode_cancel(rno: int) -> bytes:
    return _frame(rno, CANCEL)


def encode_response(rno: int, status: Text, headers) -> bytes:
    pairs = [(_latin1(k), _latin1(v)) for k, v in _items(headers)]
    return _frame(rno, RESPONSE, _bytes(_latin1(status)) + _pairs(pairs))


def encode_response_body(rno: int, data: bytes) -> bytes:
    return _frame(rno, RESPONSE_BODY, bytes(data))


def encode_response_end(rno: int, outcome: str | int = "complete") -> bytes:
    if isinstance(outcome, str):
        code = {"complete": 0, "failed": 1}[outcome]
    else:
        code = int(outcome)
    return _frame(rno, RESPONSE_END, bytes([code]))


# --- frame splitting -------------------------------------------------------------------

class FrameReader:
    """Splits a byte stream into frames: feed(data), then next() until it returns None.

    next() returns (rno, kind, payload) with payload excluding the kind byte, None when more
    bytes are needed, and raises ProtocolError on a framing error (after which the stream is
    unusable). A bad length, kind or rno is reported as soon as the header and kind byte
    are here; a large payload is never allocated before it arrives.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._failed: str | None = None

    def feed(self, data: bytes) -> None:
        if self._pos and (self._pos >= len(self._buf) // 2 or self._pos > (1 << 20)):
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def _fail(self, msg: str):
        self._failed = msg
        raise ProtocolError(msg)

    def next(self):
        if self._failed is not None:
            raise ProtocolError("stream already failed: " + self._failed)
        avail = len(self._buf) - self._pos
        if avail < HEADER_SIZE:
            return None
        rno, length = struct.unpack_from(">II", self._buf, self._pos)
        if length == 0:
            self._fail("frame with an empty payload (no kind byte)")
        if length > MAX_PAYLOAD:
            self._fail(f"frame payload of {length} bytes is over the limit of {MAX_PAYLOAD}")
        if avail < HEADER_SIZE + 1:
            return None
        kind = self._buf[self._pos + HEADER_SIZE]
        if kind not in KIND_NAMES:
            self._fail(f"unknown message kind 0x{kind:02x}")
        if kind in CONNECTION_KINDS and rno != 0:
            self._fail(f"{KIND_NAMES[kind]} must use request number 0")
        if kind not in CONNECTION_KINDS and rno == 0:
            self._fail(f"{KIND_NAMES[kind]} must not use request number 0")
        if avail < HEADER_SIZE + length:
            return None
        start = self._pos + HEADER_SIZE + 1
        payload = bytes(self._buf[start:self._pos + HEADER_SIZE + length])
        self._pos += HEADER_SIZE + length
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        return rno, kind, payload

    def __iter__(self):
        while (frame := self.next()) is not None:
            yield frame


# --- parsing ---------------------------------------------------------------------------

class _Cursor:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def truncated(self) -> ProtocolError:
        return ProtocolError(f"malformed {self.what} (truncated field or over limit)")

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def raw(self, n: int) -> bytes:
        if self.remaining() < n:
            raise self.truncated()
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u32(self) -> int:
        return _U32.unpack(self.raw(4))[0]

    def f64(self) -> float:
        return _F64.unpack(self.raw(8))[0]

    def bytes(self, limit: int) -> bytes:
        n = self.u32()
        if n > limit:
            raise self.truncated()
        return self.raw(n)

    def done(self) -> None:
        if self.remaining():
            raise ProtocolError(f"malformed {self.what} (trailing bytes)")


def _parse_pairs(cur: _Cursor, max_entries: int, max_bytes: int, used: int):
    n = cur.u32()
    if n > max_entries:
        raise ProtocolError(f"{cur.what} has {n} entries, over the limit of {max_entries}")
    out = []
    total = used
    for _ in range(n):
        k = cur.bytes(max_bytes)
        v = cur.bytes(max_bytes)
        total += len(k) + len(v)
        if total > max_bytes:
            raise ProtocolError(f"{cur.what} is over the limit of {max_bytes} bytes")
        out.append((k, v))
    cur.done()
    return out


def parse_hello(payload: bytes) -> dict:
    """-> {"version": int, "pid": int, "role": str, "software": str}."""
    if payload[:4] != MAGIC:
        raise ProtocolError('HELLO without the "RSLB" magic: not a resumelb peer')
    cur = _Cursor(payload, "HELLO")
    cur.raw(4)
    version = cur.u32()
    pid = cur.u32()
    role = cur.bytes(MAX_TEXT_FIELD)
    software = cur.bytes(MAX_TEXT_FIELD)
    cur.done()
    return {"version": version, "pid": pid, "role": _from_utf8(role),
            "software": _from_utf8(software)}


def parse_resume_entries(payload: bytes) -> list[tuple[bytes, float]]:
    """-> [(class bytes, score)] in wire order."""
    cur = _Cursor(payload, "RESUME")
    n = cur.u32()
    if n > MAX_RESUME_ENTRIES:
        raise ProtocolError(f"RESUME has too many classes ({n})")
    if n > cur.remaining() // 12:
        raise cur.truncated()
    out = []
    for _ in range(n):
        cls = cur.bytes(MAX_CLASS_BYTES)
        score = cur.f64()
        if not math.isfinite(score) or score < 0:
            raise ProtocolError(f"RESUME score for class {cls!r} is not finite or is negative")
        out.append((cls, score))
    cur.done()
    return out


def parse_resume(payload: bytes) -> dict[str, float]:
    """-> {class (UTF-8, surrogateescape): score}."""
    return {_from_utf8(c): s for c, s in parse_resume_entries(payload)}


def parse_request(payload: bytes) -> tuple[str, list[tuple[str, str]]]:
    """-> (request class (UTF-8, surrogateescape), [(name, value)] latin-1)."""
    cur = _Cursor(payload, "REQUEST class")
    cls = cur.bytes(MAX_CLASS_BYTES)
    cur.what = "REQUEST environ"
    env = _parse_pairs(cur, MAX_ENVIRON_ENTRIES, MAX_ENVIRON_BYTES, 0)
    return _from_utf8(cls), [(_from_latin1(k), _from_latin1(v)) for k, v in env]


def _check_status(status: bytes) -> None:
    if (len(status) < 4 or status[3:4] != b" " or not 0x31 <= status[0] <= 0x39 or
            not all(0x30 <= c <= 0x39 for c in status[1:3])):
        raise ProtocolError(f"RESPONSE status {status[:64]!r} is not of the form 'NNN reason'")


def parse_response(payload: bytes) -> tuple[str, list[tuple[str, str]]]:
    """-> (status, [(name, value)]), all latin-1."""
    cur = _Cursor(payload, "RESPONSE status")
    status = cur.bytes(MAX_TEXT_FIELD)
    _check_status(status)
    cur.what = "RESPONSE headers"
    headers = _parse_pairs(cur, MAX_HEADERS, MAX_HEADER_BYTES, len(status))
    return _from_latin1(status), [(_from_latin1(k), _from_latin1(v)) for k, v in headers]


def parse_body(payload: bytes, kind: int = RESPONSE_BODY) -> bytes:
    """REQUEST_BODY / RESPONSE_BODY data: non-empty, at most 1 MiB."""
    if not payload:
        raise ProtocolError(f"{KIND_NAMES[kind]} with no data")
    if len(payload) > MAX_BODY_CHUNK:
        raise ProtocolError(f"{KIND_NAMES[kind]} chunk over {MAX_BODY_CHUNK} bytes")
    return payload


def parse_request_body(payload: bytes) -> bytes:
    return parse_body(payload, REQUEST_BODY)


def parse_response_body(payload: bytes) -> bytes:
    return parse_body(payload, RESPONSE_BODY)


def parse_empty(payload: bytes, kind: int) -> None:
    """KEEPALIVE, GOAWAY, REQUEST_END, CANCEL: no payload."""
    if payload:
        raise ProtocolError(f"{KIND_NAMES[kind]} must have no payload")
    return None


def parse_keepalive(payload: bytes) -> None:
    return parse_empty(payload, KEEPALIVE)


def parse_goaway(payload: bytes) -> None:
    return parse_empty(payload, GOAWAY)


def parse_request_end(payload: bytes) -> None:
    return parse_empty(payload, REQUEST_END)


def parse_cancel(payload: bytes) -> None:
    return parse_empty(payload, CANCEL)


def parse_response_end(payload: bytes) -> str:
    """-> "complete" or "failed"."""
    if len(payload) != 1:
        raise ProtocolError("RESPONSE_END must carry one byte")
    if payload[0] not in OUTCOMES:
        raise ProtocolError(f"RESPONSE_END outcome {payload[0]} unknown")
    return OUTCOMES[payload[0]]


def parse_challenge(payload: bytes) -> bytes:
    """-> the nonce."""
    if len(payload) != NONCE_BYTES:
        raise ProtocolError(f"CHALLENGE must carry a {NONCE_BYTES}-byte nonce, "
                            f"not {len(payload)} bytes")
    return bytes(payload)


def parse_proof(payload: bytes) -> bytes:
    """-> the HMAC."""
    if len(payload) != PROOF_BYTES:
        raise ProtocolError(f"PROOF must carry a {PROOF_BYTES}-byte HMAC, "
                            f"not {len(payload)} bytes")
    return bytes(payload)


def parse_payload(kind: int, payload: bytes):
    """Decodes any kind's payload (see the parse_* functions for the result types)."""
    if kind == HELLO:
        return parse_hello(payload)
    if kind == RESUME:
        return parse_resume(payload)
    if kind == REQUEST:
        return parse_request(payload)
    if kind == RESPONSE:
        return parse_response(payload)
    if kind == RESPONSE_END:
        return parse_response_end(payload)
    if kind == CHALLENGE:
        return parse_challenge(payload)
    if kind == PROOF:
        return parse_proof(payload)
    if kind in BODY_KINDS:
        return parse_body(payload, kind)
    if kind in EMPTY_KINDS:
        return parse_empty(payload, kind)
    raise ProtocolError(f"unknown message kind 0x{kind:02x}")


def decode_frames(data: bytes) -> list[tuple[int, str, object]]:
    """Splits and decodes a complete stream: [(rno, kind name, decoded)]."""
    reader = FrameReader()
    reader.feed(data)
    out = [(rno, KIND_NAMES[kind], parse_payload(kind, payload)) for rno, kind, payload in reader]
    if reader.buffered:
        raise ProtocolError(f"{reader.buffered} bytes of an incomplete frame at the end")
    return out


# --- a blocking client (the LB side) ---------------------------------------------------

class Connection:
    """A blocking LB-side connection to a worker.

    Connects, sends the LB's HELLO, and reads frames. Frames read while looking for
    something else (other request numbers in read_response, connection frames) are kept in
    order and returned by later read_frame / read_response calls, so interleaved requests
    can be tested. It never answers anything by itself (not even KEEPALIVE), except the
    link secret exchange when given a ``secret``: it sends CHALLENGE after its HELLO, answers
    the peer's CHALLENGE with PROOF (unless ``answer_challenge`` is false: a rogue peer that
    skips the proof), and checks the peer's PROOF (``peer_proved``); those two frames are
    then not returned by the read methods. Without a secret they are returned like any
    other frame (``peer_nonce`` keeps the last CHALLENGE's nonce).

    ``sock`` (an accepted socket) with ``role="worker"`` plays a worker against an LB.
    """

    def __init__(self, host: str = "", port: int = 0, timeout: float = 10,
                 send_hello: bool = True, pid: int | None = None, software: str = "rlbproto 1",
                 secret: bytes | None = None, answer_challenge: bool = True,
                 sock: socket.socket | None = None, role: str = "lb") -> None:
        self.timeout = timeout
        self.sock = sock if sock is not None else socket.create_connection((host, port),
                                                                           timeout=timeout)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.role = role
        self.secret = secret
        self.answer_challenge = answer_challenge
        self.own_nonce = os.urandom(NONCE_BYTES)
        self.peer_nonce: bytes | None = None
        self.peer_proved: bool | None = None  # None: no PROOF yet
        self.reader = FrameReader()
        self.pending: collections.deque = collections.deque()  # (rno, kind name, decoded)
        self.closed_by_peer = False
        self.last_resume: dict[str, float] | None = None
        self.goaway = False
        if send_hello:
            opening = encode_hello(role, pid=pid, software=software)
            if secret is not None:
                opening += encode_challenge(self.own_nonce)
            self.send(opening)

    # -- sending --
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_request(self, rno: int, request_class: Text, environ, body: bytes | None = None,
                     chunk: int = PREFERRED_CHUNK, end: bool = True) -> None:
        parts = [encode_request(rno, request_class, environ)]
        if body:
            view = memoryview(body)
            for pos in range(0, len(view), chunk):
                parts.append(encode_request_body(rno, view[pos:pos + chunk]))
        if end:
            parts.append(encode_request_end(rno))
        self.send(b"".join(parts))

    def send_body(self, rno: int, data: bytes) -> None:
        self.send(encode_request_body(rno, data))

    def send_end(self, rno: int) -> None:
        self.send(encode_request_end(rno))

    def send_cancel(self, rno: int) -> None:
        self.send(encode_cancel(rno))

    def send_keepalive(self) -> None:
        self.send(encode_keepalive())

    # -- receiving --
    def _read_socket_frame(self, deadline: float):
        """The next frame from the socket (not from pending), decoded."""
        while True:
            frame = self.reader.next()
            if frame is not None:
                rno, kind, payload = frame
                decoded = parse_payload(kind, payload)
                name = KIND_NAMES[kind]
                if kind == RESUME:
                    self.last_resume = decoded
                elif kind == GOAWAY:
                    self.goaway = True
                elif kind == CHALLENGE:
                    self.peer_nonce = decoded
                    if self.secret is not None:
                        if self.answer_challenge:
                            self.send(encode_proof(link_proof(self.secret, self.role, decoded,
                                                              self.own_nonce)))
                        continue
                elif kind == PROOF and self.secret is not None:
                    peer_role = "worker" if self.role == "lb" else "lb"
                    want = link_proof(self.secret, peer_role, self.own_nonce,
                                      self.peer_nonce or b"")
                    self.peer_proved = hmac.compare_digest(decoded, want)
                    continue
                return rno, name, decoded
            if self.closed_by_peer:
                raise ConnectionError("connection closed by the peer")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out waiting for a frame")
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                raise TimeoutError("timed out waiting for a frame")
            data = self.sock.recv(1 << 20)
            if not data:
                self.closed_by_peer = True
            else:
                self.reader.feed(data)

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def read_frame(self, timeout: float | None = None):
        """-> (rno, kind name, decoded): the oldest unread frame."""
        if self.pending:
            return self.pending.popleft()
        return self._read_socket_frame(self._deadline(timeout))

    def read_hello_and_resume(self, timeout: float | None = None):
        """Reads the worker's HELLO (the first frame) and its first RESUME."""
        deadline = self._deadline(timeout)
        rno, name, hello = self._next(deadline)
        if name != "HELLO":
            raise ProtocolError(f"expected HELLO first, got {name}")
        while True:
            rno, name, decoded = self._next(deadline)
            if name == "RESUME":
                return hello, decoded
            self.pending.append((rno, name, decoded))

    def _next(self, deadline: float):
        if self.pending:
            return self.pending.popleft()
        return self._read_socket_frame(deadline)

    def read_response(self, rno: int, timeout: float | None = None):
        """-> (status, headers, body, outcome) for request rno, up to its RESPONSE_END.

        status is None if RESPONSE_END came without a RESPONSE. Frames for other request
        numbers (and connection frames) are kept for later calls.
        """
        deadline = self._deadline(timeout)
        status, headers, body, outcome = None, [], bytearray(), None

        def take(name, decoded):
            nonlocal status, headers, outcome
            if name == "RESPONSE":
                status, headers = decoded
            elif name == "RESPONSE_BODY":
                body.extend(decoded)
            elif name == "RESPONSE_END":
                outcome = decoded
            else:
                raise ProtocolError(f"unexpected {name} for request {rno}")

        # First the frames already read for this request, in order.
        keep = collections.deque()
        while self.pending and outcome is None:
            frame = self.pending.popleft()
            if frame[0] == rno and frame[0] != 0:
                take(frame[1], frame[2])
            else:
                keep.append(frame)
        keep.extend(self.pending)
        self.pending = keep
        while outcome is None:
            frame = self._read_socket_frame(deadline)
            if frame[0] == rno and frame[0] != 0:
                take(frame[1], frame[2])
            else:
                self.pending.append(frame)
        return status, headers, bytes(body), outcome

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
