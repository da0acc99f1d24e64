"""Live updates: one loop looks at the state every ``POLL_SECONDS`` and tells each open office page
whose list changed, over server-sent events.

An event carries no data: it says "your list changed", and the page fetches its rows again (its
own office's, through the same access check as any request). A page hears only of its own
office: a listener is registered under one office, and the loop wakes the listeners of the
offices ``ConsoleData.poll`` names. Each listener holds at most one pending event, so a page that
is slow to read is woken once however much changed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from graph.store import StoreError
from streams.console.data import ConsoleData
from streams.console.metrics import Metrics
from tracer.errors import TracerError

log = logging.getLogger(__name__)
POLL_SECONDS = 0.1  # a tenth of the second an alert may take to reach an open page
KEEPALIVE_SECONDS = 15.0  # a comment line, so proxies and the browser keep an idle stream open
CHANGED = b"event: changed\ndata: {}\n\n"


class Hub:
    def __init__(self, data: ConsoleData, metrics: Metrics) -> None:
        self.data, self.metrics = data, metrics
        self._listeners: defaultdict[str, set[asyncio.Queue[None]]] = defaultdict(set)
        self._last_look: float | None = None
        self._closing = False

    @property
    def clients(self) -> int:
        return sum(map(len, self._listeners.values()))

    def since_last_look(self) -> float | None:
        """Seconds since the loop last read the state (None: never)."""
        return None if self._last_look is None else time.monotonic() - self._last_look

    def close(self) -> None:
        """End every event stream within a look (a page reconnects to the next server); safe in a
        signal handler."""
        self._closing = True

    async def run(self) -> None:
        """Look at the state until cancelled; a failed look is logged and tried again."""
        while True:
            if self._closing:
                self._wake(self._listeners)
            try:
                changes = await run_in_threadpool(self.data.poll)
            except (StoreError, TracerError, OSError, ValueError) as exc:  # ValueError: a line the run was writing
                log.warning("cannot read the state's changes: %s", exc)
            else:
                self._last_look = time.monotonic()
                self.metrics.saw(changes)
                self._wake(changes.offices)
            await asyncio.sleep(POLL_SECONDS)

    def _wake(self, offices: Iterable[str]) -> None:
        for office in offices:
            for queue in self._listeners.get(office, ()):
                if queue.empty():
                    queue.put_nowait(None)

    def stream(self, office: str) -> StreamingResponse:
        """The event stream of one office's page (the caller has checked who may hear it)."""
        return StreamingResponse(self._events(office), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _events(self, office: str) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._listeners[office].add(queue)
        try:
            yield b"retry: 2000\n: listening\n\n"  # sent at once: the page knows it is connected
            while True:
                try:
                    await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keepalive\n\n"
                else:
                    if self._closing:
                        return
                    yield CHANGED
        finally:
            listeners = self._listeners[office]
            listeners.discard(queue)
            if not listeners:
                del self._listeners[office]
