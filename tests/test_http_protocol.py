"""kg.server.http_protocol: a response's head and body leave in one write, nothing is lost or
reordered, and a lone head still leaves at the end of the event-loop step (streams)."""

from __future__ import annotations

import asyncio
import socket

import httpx

from kg.server.http_protocol import _JoiningTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def _head_and_body_written_in_one_write() -> None:
    raw = RecordingTransport()
    joined = _JoiningTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    joined.write(b"ok")
    assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing held
    assert len(raw.writes) == 1


async def _a_lone_write_leaves_at_the_end_of_the_step_and_order_is_kept() -> None:
    raw = RecordingTransport()
    joined = _JoiningTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"head")
    assert raw.writes == []
    await asyncio.sleep(0)
    assert raw.writes == [b"head"]
    for chunk in (b"a", b"b", b"c"):  # a stream: every chunk arrives, in order
        joined.write(chunk)
        await asyncio.sleep(0)
    assert b"".join(raw.writes) == b"headabc"


async def _close_flushes_what_is_held_and_other_calls_pass_through() -> None:
    raw = RecordingTransport()
    joined = _JoiningTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    joined.write(b"last words")
    joined.close()
    assert raw.writes == [b"last words"] and raw.closed
    await asyncio.sleep(0)
    assert raw.writes == [b"last words"]
    assert joined.get_extra_info("peername") == "info:peername"
    assert joined.is_closing()


def test_head_and_body_written_in_one_write() -> None:
    asyncio.run(_head_and_body_written_in_one_write())


def test_a_lone_write_leaves_at_the_end_of_the_step_and_order_is_kept() -> None:
    asyncio.run(_a_lone_write_leaves_at_the_end_of_the_step_and_order_is_kept())


def test_close_flushes_what_is_held_and_other_calls_pass_through() -> None:
    asyncio.run(_close_flushes_what_is_held_and_other_calls_pass_through())


def test_live_service_answers_whole_responses_on_one_keep_alive_connection(server) -> None:
    """Over the real protocol: consecutive small answers, a 304 (no body) and a HEAD on one
    connection each arrive complete and in order."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        query = {"query": "SELECT (1 AS ?one) {}"}
        first = client.get("/sparql", params=query, headers={"Accept": "application/json"})
        assert first.status_code == 200 and first.json()["results"]["bindings"]
        etag = first.headers["etag"]
        again = client.get("/sparql", params=query,
                           headers={"Accept": "application/json", "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        head = client.head("/sparql", params=query, headers={"Accept": "application/json"})
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(first.content)
        last = client.get("/sparql", params={"query": "ASK {}"},
                          headers={"Accept": "application/sparql-results+json"})
        assert last.status_code == 200 and last.json() == {"head": {}, "boolean": True}


def test_raw_socket_reads_one_complete_response(server) -> None:
    """A raw HTTP/1.1 exchange: status line, headers and exactly Content-Length body bytes."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /sparql?query=ASK%20%7B%7D HTTP/1.1\r\nHost: x\r\n"
                     b"Accept: application/sparql-results+json\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200") and body == b'{"head":{},"boolean":true}'
