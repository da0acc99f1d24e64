"""A bare HTTP/1.1 client over asyncio streams, for the benchmarks' many clients of the console.

httpx spent more CPU on 200 open pages and 50 lookups a second than the console did on answering
them, on the same two cores as the run being measured; this does the few things those clients need
(GET with headers, keep-alive, a body by length or in chunks, an event stream read line by line)
at a fraction of that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlencode, urlsplit


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def _send(self, path: str, params: dict[str, str] | None, headers: dict[str, str]) -> tuple[int, bool]:
        """The request; the status and whether the body comes in chunks (else by Content-Length)."""
        target = f"{path}?{urlencode(params)}" if params else path
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host}", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in head[1:])}
        self._length = int(fields.get("content-length", 0))
        return int(head[0].split()[1]), fields.get("transfer-encoding") == "chunked"

    async def get(self, path: str, params: dict[str, str] | None = None,
                  headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        status, chunked = await self._send(path, params, headers or {})
        if not chunked:
            return status, await self.reader.readexactly(self._length)
        return status, b"".join([chunk async for chunk in self._chunks()])

    async def events(self, path: str, headers: dict[str, str]) -> AsyncIterator[str]:
        """The lines of an event stream, as they come."""
        _, chunked = await self._send(path, None, headers)
        assert chunked, "an event stream comes in chunks"
        async for chunk in self._chunks():
            for line in chunk.decode().split("\n"):
                yield line

    async def _chunks(self) -> AsyncIterator[bytes]:
        while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
            yield (await self.reader.readexactly(size + 2))[:-2]
        await self.reader.readuntil(b"\r\n")

    def close(self) -> None:
        self.writer.close()
