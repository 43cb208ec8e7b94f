"""A retry budget: failovers may add at most ``ratio`` x requests (+ ``minimum``) per window.

An outage must never multiply upstream load (LiteLLM #34399, #7262): each request makes
one first attempt for free; every further attempt spends from the budget, and when it
is spent the request fails with the error of its last attempt instead of retrying.
Counts live in one-second buckets over a sliding window, so the check is O(window).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RetryBudget:
    def __init__(
        self,
        ratio: float = 0.2,
        minimum: int = 10,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.minimum = minimum
        self.window = max(1, int(window))
        self._clock = clock
        self._requests = [0] * self.window
        self._retries = [0] * self.window
        self._stamp = [0] * self.window
        self.refused = 0

    def _slot(self) -> int:
        sec = int(self._clock())
        i = sec % self.window
        if self._stamp[i] != sec:
            self._stamp[i] = sec
            self._requests[i] = 0
            self._retries[i] = 0
        return i

    def _totals(self) -> tuple[int, int]:
        now = int(self._clock())
        reqs = rets = 0
        for i in range(self.window):
            if now - self._stamp[i] < self.window:
                reqs += self._requests[i]
                rets += self._retries[i]
        return reqs, rets

    def on_request(self) -> None:
        self._requests[self._slot()] += 1

    def allowed(self) -> int:
        reqs, _ = self._totals()
        return self.minimum + int(self.ratio * reqs)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        i = self._slot()
        reqs, rets = self._totals()
        if rets >= self.minimum + int(self.ratio * reqs):
            self.refused += 1
            return False
        self._retries[i] += 1
        return True

    def snapshot(self) -> dict[str, int]:
        reqs, rets = self._totals()
        return {
            "window_requests": reqs,
            "window_retries": rets,
            "allowed": self.minimum + int(self.ratio * reqs),
            "refused_total": self.refused,
        }
