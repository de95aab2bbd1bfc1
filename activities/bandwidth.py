"""Bandwidth limiting: a token bucket that blocks the copying thread."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Lets `bytes_per_second` through on average, in bursts of at most a quarter second; the
    rate can change at any time (-1 or 0: no limit)."""

    def __init__(self, bytes_per_second: int) -> None:
        self.rate = 0
        self._tokens = 0.0
        self._last = time.monotonic()
        # Threads of one batch take in turn: the one that waits holds the others back too.
        self._lock = threading.Lock()
        self.set_rate(bytes_per_second)

    def set_rate(self, bytes_per_second: int) -> None:
        rate = bytes_per_second if bytes_per_second > 0 else 0
        if rate == self.rate:
            return
        self.rate = rate
        self._burst = rate / 4
        # What was saved up under the old rate must not become a burst under the new one.
        self._tokens = min(self._tokens, self._burst)

    @property
    def chunk_size(self) -> int:
        """A read size that keeps the flow smooth under the limit."""
        return max(4096, min(1 << 20, int(self._burst))) if self.rate else 1 << 20

    def take(self, count: int) -> None:
        if not self.rate:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self.rate) - count
            self._last = now
            if self._tokens < 0:
                time.sleep(-self._tokens / self.rate)
