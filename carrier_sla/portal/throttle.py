"""Login rate limiting: repeated failures for a user name or from an address are slowed.

In memory, per server process (a restart forgets it; several workers would each keep their
own): after FREE failures in a row for a key (the user name, and separately the client
address), the next attempt for that key is refused until DELAY x 2^(failures - FREE) seconds
after the last failure, at most MAX_DELAY (15 minutes): 1, 2, 4, 8 ... seconds. A refused
attempt is not checked at all (no password is tried) and does not count as a failure; a
successful login clears its user name's count (not the address's: one address trying many
names stays slowed). Failures older than FORGET are forgotten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

FREE = 3
DELAY = 1.0
MAX_DELAY = 900.0
FORGET = 3600.0


@dataclass
class _Count:
    failures: int
    last: float


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(user: str, address: str) -> tuple[str, str]:
        return f"user:{user.lower()}", f"address:{address}"

    def wait(self, *keys: str) -> float:
        """Seconds before an attempt for these keys may be checked (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [0.0]
            for key in keys:
                count = self._counts.get(key)
                if count is None:
                    continue
                if now - count.last > FORGET:
                    del self._counts[key]
                    continue
                if count.failures >= FREE:
                    delay = min(DELAY * 2 ** (count.failures - FREE), MAX_DELAY)
                    waits.append(count.last + delay - now)
            return max(waits)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                count = self._counts.get(key)
                if count is None or now - count.last > FORGET:
                    self._counts[key] = _Count(1, now)
                else:
                    count.failures += 1
                    count.last = now

    def succeeded(self, user_key: str) -> None:
        with self._lock:
            self._counts.pop(user_key, None)
