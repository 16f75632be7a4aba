"""Admission control: refuse what the server cannot start soon, instead of queuing it.

Past its capacity a server that queues every request answers all of them
late; one that refuses the excess with UNAVAILABLE (HTTP 503), as TF
Serving's full batch queue does, keeps the admitted ones fast, its memory
flat, and tells clients to back off and retry.
"""

import contextlib
import threading

import grpc

from tfllm.serving.protocol import ServingError


class InFlightLimit:
    """Admits at most `limit` requests at once; 0 admits everything.

    Example:

        limit = InFlightLimit(64)
        with limit.admit():   # Raises UNAVAILABLE when 64 are already running.
            run(request)
    """

    def __init__(self, limit):
        if int(limit) < 0:
            raise ValueError(f"max_in_flight_requests must be >= 0 (0: no limit). Received: {limit}")
        self.limit = int(limit)
        self.in_flight = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def admit(self):
        with self._lock:
            if self.limit and self.in_flight >= self.limit:
                raise ServingError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"the server is at its limit of {self.limit} requests in flight "
                    "(--max_in_flight_requests); retry later",
                )
            self.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
