"""``serve`` sends an answer that is ready at once as one TCP segment: the head, the body
and, for a stream, every event that is ready, so the client wakes once, not once per piece.

Counted with the kernel's own tally of the data segments a socket received (TCP_INFO).
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Iterator

import pytest

from tests.fakes.raw_http import chat_post
from tests.serve_support import Served, start, stop

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO is Linux's")

CONFIG = """
[backends.quick]
type = "mock"
response = "one two three"
"""
DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in struct tcp_info (Linux >= 4.6)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(CONFIG, tmp_path_factory.mktemp("segments"))
    yield server
    stop(server)


def data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < DATA_SEGS_IN + 4:
        pytest.skip("this kernel's TCP_INFO has no data segment count")
    return int(struct.unpack_from("I", info, DATA_SEGS_IN)[0])


def exchange(served: Served, request: bytes, end: bytes) -> tuple[bytes, int]:
    """Send ``request`` on a fresh connection; (the answer read up to ``end``, the data
    segments it came in)."""
    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(request)
        answer = b""
        while not answer.endswith(end):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        return answer, data_segments_in(sock)


def test_a_whole_answer_is_one_segment(served: Served) -> None:
    answer, segments = exchange(served, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n", b"}")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}')
    assert segments == 1
    messages = [{"role": "user", "content": "hi"}]
    answer, segments = exchange(served, chat_post({"model": "quick", "messages": messages}), b"}}")
    assert b'"content":"one two three"' in answer
    assert segments == 1


def test_a_stream_ready_at_once_is_one_segment(served: Served) -> None:
    body = {"model": "quick", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    answer, segments = exchange(served, chat_post(body), b"0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"content":"one two three"' in answer and b"data: [DONE]" in answer
    assert segments == 1
