"""Web pages for staff (queues, tasks, admin, metrics)."""

from bot.web.routes import setup_escalation, setup_web

__all__ = ["setup_escalation", "setup_web"]
