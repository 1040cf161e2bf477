"""Web pages for staff (queues, tasks, admin, metrics)."""

from bot.web.routes import setup_web

__all__ = ["setup_web"]
