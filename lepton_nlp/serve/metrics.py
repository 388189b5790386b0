"""Prometheus metrics of one app: request counts and latency, batch sizes, queue depth."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServeMetrics"]

_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServeMetrics:
    """The app's metrics, in a registry of its own (so several apps in one process never clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "lepton_http_requests",
            "HTTP requests answered, by route and status code.",
            ["method", "path", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "lepton_http_request_duration_seconds",
            "Time from request received to response sent, by route.",
            ["path"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "lepton_http_requests_in_flight", "Requests being handled now.", registry=r
        )
        self.batch_size = Histogram(
            "lepton_batch_size",
            "Items per predict call (micro-batch), by model.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            "lepton_batch_requests",
            "Requests merged into one predict call, by model.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "lepton_batch_duration_seconds",
            "Time of one predict call, by model.",
            ["model"],
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self.items = Counter(
            "lepton_predicted_items", "Inputs predicted, by model.", ["model"], registry=r
        )
        self.queued = Gauge(
            "lepton_queue_items", "Items waiting for a model, by model.", ["model"], registry=r
        )
        self.model_info = Gauge(
            "lepton_model_info",
            "Loaded models (value 1), by name and task.",
            ["model", "task"],
            registry=r,
        )

    def record_batch(self, model: str, items: int, requests: int, seconds: float) -> None:
        self.batch_size.labels(model).observe(items)
        self.batch_requests.labels(model).observe(requests)
        self.batch_seconds.labels(model).observe(seconds)
        self.items.labels(model).inc(items)

    def render(self) -> bytes:
        return generate_latest(self.registry)
