"""Prometheus metrics of planning and dispatch, registered in a registry the app passes in."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["SchedulerMetrics", "metrics_handler", "metrics_routes", "scheduler_metrics"]

_LAG_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400)
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, SchedulerMetrics] = weakref.WeakKeyDictionary()


class SchedulerMetrics:
    """The counters, gauges and histogram of the planner and dispatcher, all in one registry.

    Reasons are a small closed set (quiet_hours, daily_cap, opted_out, deadline, provider error codes...),
    never ids, so label cardinality stays bounded.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.planned = Counter(
            "midbot_outreach_planned", "Outreach rows planned (added, moved or revived)", registry=registry
        )
        self.due = Gauge(
            "midbot_outreach_due",
            "Outreach rows due at the start of the last dispatch run",
            registry=registry,
        )
        self.claimed = Counter(
            "midbot_outreach_claimed", "Outreach rows claimed by a dispatcher", registry=registry
        )
        self.sent = Counter(
            "midbot_outreach_sent", "Outreach rows sent (bundled rows included)", registry=registry
        )
        self.messages = Counter(
            "midbot_outreach_messages", "Outreach texts sent (one per bundle)", registry=registry
        )
        self.deferred = Counter(
            "midbot_outreach_deferred", "Outreach rows pushed to a later time", ["reason"], registry=registry
        )
        self.expired = Counter(
            "midbot_outreach_expired", "Outreach rows expired unsent", ["reason"], registry=registry
        )
        self.cancelled = Counter(
            "midbot_outreach_cancelled", "Outreach rows cancelled", ["reason"], registry=registry
        )
        self.failed = Counter(
            "midbot_outreach_failed", "Outreach rows whose send failed", ["reason"], registry=registry
        )
        self.lag = Histogram(
            "midbot_outreach_dispatch_lag_seconds",
            "Seconds from due time to send",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.send_rate = Gauge(
            "midbot_outreach_send_rate",
            "Outreach texts per second in the last dispatch run",
            registry=registry,
        )


def scheduler_metrics(registry: CollectorRegistry | None = None) -> SchedulerMetrics:
    """The SchedulerMetrics of ``registry`` (created once per registry; a private registry when None)."""
    if registry is None:
        return SchedulerMetrics(CollectorRegistry(auto_describe=True))
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = _BY_REGISTRY[registry] = SchedulerMetrics(registry)
    return metrics


def metrics_handler(registry: CollectorRegistry) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler that renders ``registry`` in the Prometheus text format."""

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


def metrics_routes(registry: CollectorRegistry) -> web.RouteTableDef:
    """``GET /metrics`` for ``registry``."""
    routes = web.RouteTableDef()
    routes.get("/metrics")(metrics_handler(registry))
    return routes
