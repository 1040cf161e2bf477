"""The audit trail for people: who (names, not ``user:1``), what (in words), and the filters' choices.

The rows themselves come from ``bot.db.audit`` (the one writer and reader); this only puts names and words
on them. Failed sign-ins are kept for the user's site (``staff.login_failed``), so a clinic admin sees the
attempts on their staff's accounts; an attempt with an unknown email belongs to no site and shows nowhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import ApiToken, AuditEvent, StaffUser

__all__ = [
    "ACTION_WORDS",
    "action_words",
    "actor_names",
    "audit_choices",
    "detail_words",
    "named_targets",
    "target_words",
]

ACTION_WORDS = {
    "staff.login": "Signed in",
    "staff.login_failed": "Sign-in failed",
    "staff.logout": "Signed out",
    "staff.site_entered": "Started working this site",
    "staff.site_left": "Switched to another site",
    "patient.view": "Opened a patient's record",
    "patient.search": "Searched for patients",
    "patient.messages": "Read a patient's messages",
    "patient.create": "Added a patient",
    "patient.update": "Changed a patient",
    "prescription.create": "Added a prescription",
    "prescription.update": "Changed a prescription",
    "fill.create": "Added a fill",
    "fill.update": "Changed a fill",
    "phone_revealed": "Showed a phone number",
    "message.media": "Opened a picture a patient sent",
    "inbox.view": "Opened the inbox",
    "task.open": "Task opened",
    "task.view": "Opened a task",
    "task.claim": "Claimed a task",
    "task.release": "Released a task",
    "task.assign": "Assigned a task",
    "task.takeover": "Took over a task",
    "task.reply": "Replied by SMS",
    "task.call": "Logged a call",
    "task.snooze": "Snoozed a task",
    "task.move": "Moved a task",
    "task.resolve": "Resolved a task",
    "task.escalate": "Task escalated past its SLA",
    "task.patient_message": "Patient wrote on a worked task",
    "audit.read": "Read the audit trail",
    "audit.export": "Exported the audit trail",
    "signals.read": "Read the signal feed",
}
_REASONS = {
    "wrong_password": "wrong password",
    "unknown_email": "unknown email",
    "account_locked": "account locked after repeated failures",
    "address_slowed": "too many failures from this address",
}
_FIXED_ACTORS = {"system": "midbot (automatic)", "anonymous": "Someone (unknown email)"}


def action_words(action: str) -> str:
    """An action in words (unknown ones made readable: ``x.some_thing`` -> ``x: some thing``)."""
    if action in ACTION_WORDS:
        return ACTION_WORDS[action]
    head, _, tail = action.partition(".")
    return f"{head}: {tail.replace('_', ' ')}" if tail else action.replace("_", " ")


def _ids(actors: Iterable[str], kind: str) -> set[int]:
    out = set()
    for actor in actors:
        prefix, _, raw = actor.partition(":")
        if prefix == kind and raw.isdigit():
            out.add(int(raw))
    return out


async def actor_names(session: AsyncSession, site_id: str, actors: Iterable[str]) -> dict[str, str]:
    """``{"user:3": "Dana Reyes", "token:1": "API token “ehr”", "system": "midbot (automatic)"}``.

    Users are named whatever site they belong to (a network admin acting here is named too; only ids that
    appear in this site's trail are asked for); tokens only when they are this site's.
    """
    actors = set(actors)
    names = {a: _FIXED_ACTORS[a] for a in actors if a in _FIXED_ACTORS}
    users = _ids(actors, "user")
    if users:
        rows = await session.execute(
            select(StaffUser.id, StaffUser.name, StaffUser.email).where(StaffUser.id.in_(users))
        )
        names |= {f"user:{uid}": name or email for uid, name, email in rows}
    tokens = _ids(actors, "token")
    if tokens:
        labels = await session.execute(
            select(ApiToken.id, ApiToken.name).where(ApiToken.id.in_(tokens), ApiToken.site_id == site_id)
        )
        names |= {
            f"token:{tid}": f"API token “{name}”" if name else f"API token {tid}" for tid, name in labels
        }
    return {a: names.get(a, a) for a in actors}


async def audit_choices(session: AsyncSession, site_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The filters' choices: (actor, name) of everyone in this site's trail, by name; the actions in it."""
    actors = list(
        await session.scalars(select(AuditEvent.actor).distinct().where(AuditEvent.site_id == site_id))
    )
    actions = sorted(
        await session.scalars(select(AuditEvent.action).distinct().where(AuditEvent.site_id == site_id)),
        key=action_words,
    )
    names = await actor_names(session, site_id, actors)
    return sorted(names.items(), key=lambda item: item[1].lower()), actions


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "–"
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or "–"
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def detail_words(event: AuditEvent) -> str:
    """The event's detail in words: why a sign-in failed, what a record change changed, else ``key: value``."""
    detail = dict(event.detail or {})
    if event.action == "staff.login_failed":
        reason = _REASONS.get(str(detail.get("reason", "")), str(detail.get("reason", "")).replace("_", " "))
        remote = detail.get("remote")
        return f"{reason}" + (f", from {remote}" if remote else "")
    if "after" in detail and isinstance(detail["after"], dict):
        before = detail.get("before") or {}
        changes = [f"{k}: {_value(before.get(k))} → {_value(v)}" for k, v in detail["after"].items()]
        source = f" (via {detail['source']})" if detail.get("source") else ""
        return "; ".join(changes) + source
    return "; ".join(f"{k.replace('_', ' ')}: {_value(v)}" for k, v in sorted(detail.items()))


def target_words(target: str, names: dict[str, str]) -> str:
    """What an event was on, in words: ``staff_user:3`` -> the person, ``task:12`` -> ``task 12``."""
    kind, _, key = target.partition(":")
    if kind == "staff_user" and f"user:{key}" in names:
        return names[f"user:{key}"]
    return f"{kind.replace('_', ' ')} {key}" if key else target.replace("_", " ")


def named_targets(events: Iterable[AuditEvent]) -> set[str]:
    """The actor keys (``user:N``) of the staff users events were on, to be named with the actors."""
    return {f"user:{e.target.partition(':')[2]}" for e in events if e.target.startswith("staff_user:")}
