"""Source ids → store ids: identity by (site, system, value), so no site's id is ever "taken" by another's.

A patient, prescription or fill is known by the ids its sources gave it. Each is a ``SourceId`` row
(kind, site, system, value) naming the store's record (``target_id``). A site's REST/CSV ids are that
site's own system, ``site_system(site_id)``; FHIR identifiers keep their system. The store id is the
source value itself when it is free, so single-site data keeps the ids it was imported with; when another
record already holds that id, it is the value plus a short digest of its identity.

The caller owns the transaction (nothing is committed here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.base import utcnow
from bot.db.models import Fill, Prescription, SourceId

__all__ = ["AMBIGUOUS", "Key", "Ref", "assign", "lookup", "resolve_refs", "site_system"]

Key = tuple[str, str, str]  # (site_id, system, value)
AMBIGUOUS = "ambiguous"
_SITE_SYSTEM = "urn:midbot:site:"
_MAX_ID = 64


def site_system(site_id: str) -> str:
    """The identifier system of a site's own REST/CSV ids."""
    return f"{_SITE_SYSTEM}{site_id}"


@dataclass(frozen=True, slots=True)
class Ref:
    """A resolved reference: the store id and the site it belongs to."""

    target_id: str
    site_id: str


def _store_id(key: Key, attempt: int) -> str:
    site, system, value = key
    if attempt == 0 and len(value) <= _MAX_ID:
        return value
    digest = hashlib.sha256(f"{site}\n{system}\n{value}\n{attempt}".encode()).hexdigest()[:12]
    return f"{value[: _MAX_ID - 13]}~{digest}"


async def lookup(session: AsyncSession, kind: str, keys: Iterable[Key]) -> dict[Key, str]:
    """The store ids of the keys already on file (unknown keys are left out)."""
    wanted = sorted(set(keys))
    found: dict[Key, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await session.execute(
            select(SourceId.site_id, SourceId.system, SourceId.value, SourceId.target_id).where(
                SourceId.kind == kind,
                tuple_(SourceId.site_id, SourceId.system, SourceId.value).in_(chunk),
            )
        )
        found.update({(r[0], r[1], r[2]): r[3] for r in rows})
    return found


async def _taken(session: AsyncSession, model: type[Any], kind: str, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    held = set(await session.scalars(select(model.id).where(model.id.in_(sorted(ids)))))
    named = await session.scalars(
        select(SourceId.target_id).where(SourceId.kind == kind, SourceId.target_id.in_(sorted(ids)))
    )
    return held | set(named)


async def assign(session: AsyncSession, kind: str, model: type[Any], keys: Iterable[Key]) -> dict[Key, str]:
    """The store id of every key: the one on file, or a new one recorded now.

    Args:
        session: an open session; the caller commits.
        kind: ``patient``, ``prescription`` or ``fill``.
        model: the table whose primary key the store id is (a new id must be free there).
        keys: (site, system, value) of each record; the site must exist.
    """
    wanted = set(keys)
    ids = await lookup(session, kind, wanted)
    adopted = await _unnamed(session, kind, model, wanted - ids.keys())
    if adopted:
        await _record(session, kind, adopted)
        ids.update(adopted)
    fresh = sorted(wanted - ids.keys())
    attempt = 0
    while fresh:
        proposed = {key: _store_id(key, attempt) for key in fresh}
        taken = await _taken(session, model, kind, set(proposed.values()))
        seen: set[str] = set()
        retry = []
        for key, store_id in proposed.items():
            if store_id in taken or store_id in seen:
                retry.append(key)
            else:
                seen.add(store_id)
                ids[key] = store_id
        await _record(session, kind, {k: ids[k] for k in fresh if k not in retry})
        fresh, attempt = retry, attempt + 1
    return ids


async def _record(session: AsyncSession, kind: str, ids: dict[Key, str]) -> None:
    rows = [
        {"kind": kind, "site_id": k[0], "system": k[1], "value": k[2], "target_id": t, "created_at": utcnow()}
        for k, t in ids.items()
    ]
    if rows:
        await session.execute(insert(SourceId), rows)


async def _unnamed(session: AsyncSession, kind: str, model: type[Any], keys: set[Key]) -> dict[Key, str]:
    """A site's own id naming a record of that site that no source id names yet (written before
    source ids were kept, or seeded directly) is that record's source id."""
    own = {k for k in keys if k[1] == site_system(k[0])}
    if not own:
        return {}
    values = sorted({k[2] for k in own})
    if model is Fill:
        query = select(Fill.id, Prescription.site_id).join(
            Prescription, Prescription.id == Fill.prescription_id
        )
    else:
        query = select(model.id, model.site_id)
    found = (await session.execute(query.where(model.id.in_(values)))).all()
    sites: dict[str, str] = {row[0]: row[1] for row in found}
    named = set(
        await session.scalars(
            select(SourceId.target_id).where(SourceId.kind == kind, SourceId.target_id.in_(values))
        )
    )
    return {k: k[2] for k in own if sites.get(k[2]) == k[0] and k[2] not in named}


async def resolve_refs(
    session: AsyncSession,
    kind: str,
    model: type[Any],
    values: Iterable[str],
    site_scope: str | None,
) -> dict[str, Ref | str]:
    """Resolve REST/CSV references (a site's own ids) to store ids.

    A value is first read as the site's own source id (any site when ``site_scope`` is None: found at
    two sites it is ``AMBIGUOUS``), then as a store id at the site (what the API and FHIR out show).

    Returns:
        value → Ref, or ``AMBIGUOUS``; values found nowhere are left out.
    """
    wanted = sorted(set(values))
    found: dict[str, list[Ref]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(SourceId.value, SourceId.target_id, SourceId.site_id, SourceId.system).where(
            SourceId.kind == kind, SourceId.value.in_(chunk)
        )
        if site_scope is not None:
            query = query.where(SourceId.site_id == site_scope, SourceId.system == site_system(site_scope))
        for value, target, site, system in await session.execute(query):
            if system == site_system(site):
                found.setdefault(value, []).append(Ref(target, site))
    result: dict[str, Ref | str] = {v: refs[0] if len(refs) == 1 else AMBIGUOUS for v, refs in found.items()}
    rest = [v for v in wanted if v not in result]
    for start in range(0, len(rest), 500):
        by_id = select(model.id, model.site_id).where(model.id.in_(rest[start : start + 500]))
        if site_scope is not None:
            by_id = by_id.where(model.site_id == site_scope)
        for store_id, site in await session.execute(by_id):
            result[store_id] = Ref(store_id, site)
    return result
