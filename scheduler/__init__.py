"""Outreach scheduling: programs, the planner, the dispatcher and the jobs that drive them."""

__all__ = [
    "cron",
    "dispatcher",
    "jobs",
    "metrics",
    "planner",
    "programs",
    "rules",
    "runout",
    "sender",
    "sitecfg",
    "timeutil",
]
