"""The bulk write path of a single Redis node: an encoded write rendered straight to RESP and
streamed over one connection.

Why: redis-py's pipeline spends more time packing and parsing commands than Redis spends
running them. Here every row is one ``SET key value [PXAT ms]`` (or ``UNLINK key``) rendered
with one ``%`` format; chunks are sent back to back, the next one in flight while the replies
of the previous one are read; and the replies (``+OK`` / ``:n``, one line each, never a ``-``
unless Redis reports an error) are counted by lines at C speed instead of being parsed.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

from strataml_redis._encode import EXPIRED, EncodedWrite

__all__ = ["ErrorReply", "chunks", "reply_exception", "send_chunks"]


class ErrorReply(Exception):
    """Redis answered a packed command with an error (the message, without its ``-``)."""


def chunks(enc: EncodedWrite, rows: int) -> Iterator[tuple[bytes, int]]:
    """``(payload, reply lines)`` per ``rows`` rows of ``enc`` (one reply line per row)."""
    keys, values, expire = enc.keys, enc.values, enc.expire_ms
    for start in range(0, enc.n, rows):
        stop = min(start + rows, enc.n)
        if expire is None:
            parts = [
                b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(k), k, len(v), v)
                for k, v in zip(keys[start:stop], values[start:stop], strict=True)
            ]
        else:
            parts = [
                b"*2\r\n$6\r\nUNLINK\r\n$%d\r\n%b\r\n" % (len(k), k)
                if at == EXPIRED
                else b"*5\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$4\r\nPXAT\r\n$%d\r\n%d\r\n"
                % (len(k), k, len(v), v, len(str(at)), at)
                for k, v, at in zip(
                    keys[start:stop], values[start:stop], expire[start:stop], strict=True
                )
            ]
        yield b"".join(parts), stop - start


def send_chunks(sock: Any, payloads: Iterator[tuple[bytes, int]]) -> None:
    """Send each chunk, then wait for the replies of the one before it, so Redis works on a
    chunk while this process renders the next. A ``-`` in the replies is an error reply:
    :class:`ErrorReply` is raised with its message, and the connection is left mid-stream
    (the caller closes it)."""
    buf = bytearray(1 << 16)
    seen = 0
    total = 0
    pending: collections.deque[int] = collections.deque()

    def until(lines: int) -> None:
        nonlocal seen
        while seen < lines:
            got = sock.recv_into(buf)
            if not got:
                raise ConnectionError("Redis closed the connection")
            at = buf.find(b"-", 0, got)
            if at >= 0:
                raise ErrorReply(_error_line(sock, bytes(buf[at + 1 : got])))
            seen += buf.count(b"\n", 0, got)

    for payload, lines in payloads:
        sock.sendall(payload)
        total += lines
        pending.append(total)
        if len(pending) > 1:
            until(pending.popleft())
    while pending:
        until(pending.popleft())


def _error_line(sock: Any, head: bytes) -> str:
    """The rest of an error reply's line (read on until its end, at most 64 KiB)."""
    while b"\n" not in head and len(head) < 65_536:
        more = sock.recv(65_536)
        if not more:
            break
        head += more
    return head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")


def reply_exception(message: str) -> Exception:
    """The redis-py exception of an error reply (its class picked as redis-py's parser does)."""
    try:
        from redis._parsers.base import BaseParser

        exc: Exception = BaseParser.parse_error(message)  # type: ignore[no-untyped-call]
    except (ImportError, AttributeError, TypeError):  # a redis-py without that parser
        from redis.exceptions import ResponseError

        exc = ResponseError(message)
    return exc
