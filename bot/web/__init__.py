"""Web pages for staff (queues, tasks, admin, metrics)."""
