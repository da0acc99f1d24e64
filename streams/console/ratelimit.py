"""In-memory rate limits: at most ``limit`` events per key within a sliding window.

Kept in the console's process (one process serves a city's offices), so a restart forgets them.
The number of keys is bounded: beyond ``max_keys`` the key seen least recently is forgotten, so a
flood of new addresses costs memory up to that bound and no more.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque


class RateLimit:
    def __init__(self, limit: int, window_seconds: float, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window_seconds, max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def exceeded(self, key: str) -> bool:
        """Whether ``key`` has had ``limit`` events within the window (without counting one)."""
        with self._lock:
            return len(self._recent(key)) >= self.limit

    def count(self, key: str) -> None:
        with self._lock:
            self._add(key)

    def take(self, key: str) -> bool:
        """Count an event for ``key`` if it is within the limit; False (nothing counted) if not."""
        with self._lock:
            if len(self._recent(key)) >= self.limit:
                return False
            self._add(key)
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)

    def _add(self, key: str) -> None:
        self._recent(key).append(time.monotonic())
        self._events.move_to_end(key)
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)

    def _recent(self, key: str) -> deque[float]:
        events = self._events.setdefault(key, deque())
        start = time.monotonic() - self.window
        while events and events[0] <= start:
            events.popleft()
        return events
