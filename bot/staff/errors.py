"""Errors of the staff services, each with the HTTP status a handler answers and the field it names.

::

    TaskError (status 400, field)
    ├── TaskInvalid      400  bad input; ``field`` names it
    ├── TaskForbidden    403  the caller's role may not do this
    ├── TaskNotFound     404  no such task / patient for this site
    └── TaskConflict     409  the task's state does not allow it (resolved, claimed by someone else, refused)
"""

from __future__ import annotations

__all__ = ["TaskConflict", "TaskError", "TaskForbidden", "TaskInvalid", "TaskNotFound"]


class TaskError(Exception):
    """A task operation was refused; ``status`` is the HTTP status, ``field`` the input at fault."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class TaskInvalid(TaskError):
    """Bad input."""

    status = 400


class TaskForbidden(TaskError):
    """The caller's role may not do this."""

    status = 403


class TaskNotFound(TaskError):
    """No such task (or patient) for the caller's site."""

    status = 404


class TaskConflict(TaskError):
    """The task's current state does not allow this."""

    status = 409
