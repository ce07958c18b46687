"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, one request in flight
per connection), so the client costs little of the two cores the server also needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def build_request(method: str, path: str, host: str, body: bytes, content_type: str,
                  token: str) -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _connection(host: str, port: int, next_request: Callable[[], bytes | None],
                      result: Result) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            request = next_request()
            if request is None:
                return
            start = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - start)
            result.requests += 1
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status >= 300:
                result.errors += 1
    finally:
        writer.close()


async def run(host: str, port: int, requests: list[bytes], concurrency: int) -> Result:
    result = Result()
    queue = iter(requests)

    def next_request() -> bytes | None:
        return next(queue, None)

    start = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, next_request, result)
                           for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result
