"""Request counts, latencies and batch sizes in Prometheus' text format.

Metric names follow TF Serving's (`:tensorflow:serving:request_count`, ...),
so dashboards built for `tensorflow_model_server` read these too.
"""

import bisect
import collections
import threading

# Metrics.

# Microsecond bucket bounds, as TF Serving's request_latency histogram.
_LATENCY_BUCKETS = tuple(10 * 1.8 ** i for i in range(33))
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Request counts and latencies, rendered in Prometheus' text format."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = collections.Counter()
        self._latency = {}
        self._batches = {}

    @staticmethod
    def _observe(table, key, buckets, value):
        entry = table.get(key)
        if entry is None:
            entry = table[key] = [[0] * (len(buckets) + 1), 0.0, 0]
        entry[0][bisect.bisect_left(buckets, value)] += 1
        entry[1] += value
        entry[2] += 1

    def observe_request(self, model, api, entrypoint, code, seconds):
        with self._lock:
            self._counts[(model, api, entrypoint, code.name)] += 1
            self._observe(self._latency, (model, api, entrypoint), _LATENCY_BUCKETS, seconds * 1e6)

    def observe_batch(self, model, size):
        with self._lock:
            self._observe(self._batches, (model,), _BATCH_BUCKETS, size)

    def request_count(self, model=None, code=None):
        with self._lock:
            return sum(
                n for (m, _, _, c), n in self._counts.items()
                if (model is None or m == model) and (code is None or c == code)
            )

    def batch_sizes(self, model):
        """Histogram of processed batch sizes: `{upper_bound: count}`."""
        with self._lock:
            entry = self._batches.get((model,))
            if entry is None:
                return {}
            return {b: n for b, n in zip(_BATCH_BUCKETS + (float("inf"),), entry[0]) if n}

    @staticmethod
    def _labels(**labels):
        return ",".join(f'{k}="{str(v)}"' for k, v in labels.items())

    def _histogram(self, lines, name, table, label_names, buckets):
        lines.append(f"# TYPE {name} histogram")
        for key, (counts, total, n) in sorted(table.items()):
            base = self._labels(**dict(zip(label_names, key)))
            cumulative = 0
            for bound, count in zip(buckets + (float("inf"),), counts):
                cumulative += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'{name}_bucket{{{base},le="{le}"}} {cumulative}')
            lines.append(f"{name}_sum{{{base}}} {total:g}")
            lines.append(f"{name}_count{{{base}}} {n}")

    def render(self):
        with self._lock:
            lines = ["# TYPE :tensorflow:serving:request_count counter"]
            for (model, api, entrypoint, code), n in sorted(self._counts.items()):
                labels = self._labels(model_name=model, API=api, entrypoint=entrypoint, status=code)
                lines.append(f":tensorflow:serving:request_count{{{labels}}} {n}")
            self._histogram(lines, ":tensorflow:serving:request_latency", self._latency,
                            ("model_name", "API", "entrypoint"), _LATENCY_BUCKETS)
            self._histogram(lines, ":tensorflow:serving:batching_session:processed_batch_size",
                            self._batches, ("model_name",), _BATCH_BUCKETS)
        return "\n".join(lines) + "\n"
