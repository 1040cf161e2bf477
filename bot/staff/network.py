"""Network staff: a staff user of one site who also works other sites of the network (a network admin).

A user belongs to one home site (``StaffUser.site_id``). Another site lets them in by listing their id in its
settings JSON under ``network_staff``, so a site's admin config says who from elsewhere may see its patients,
and no table is needed. A signed-in user works one site at a time (the site switcher); every query stays
filtered by that one site, so another site's patient is still "not found" until they switch to it, and a
user no site lists never sees anything but their own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Site, StaffUser

__all__ = [
    "NETWORK_STAFF",
    "NetworkInputError",
    "SiteChoice",
    "grant_site",
    "network_staff",
    "site_for_user",
    "site_members",
    "sites_for_user",
]

NETWORK_STAFF = "network_staff"
SiteChoice = tuple[str, str]  # (site id, site name)


class NetworkInputError(ValueError):
    """Bad input for a grant (the message names the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _listed(settings: dict[str, Any] | None) -> frozenset[int]:
    raw = (settings or {}).get(NETWORK_STAFF) or []
    return frozenset(int(v) for v in raw if isinstance(v, int) or (isinstance(v, str) and v.isdigit()))


def network_staff(site: Site) -> frozenset[int]:
    """The ids of the users of other sites this site lets in."""
    return _listed(site.settings)


async def sites_for_user(session: AsyncSession, user_id: int, home_site_id: str) -> list[SiteChoice]:
    """The sites this user may work: their home site first, then the sites that list them, by name."""
    rows = await session.execute(select(Site.id, Site.name, Site.settings).order_by(Site.name, Site.id))
    home: list[SiteChoice] = []
    others: list[SiteChoice] = []
    for site_id, name, settings in rows:
        listed = user_id in _listed(settings)
        if site_id == home_site_id:
            home.append((site_id, name))
        elif listed:
            others.append((site_id, name))
    return home + others


async def site_for_user(session: AsyncSession, user: StaffUser, site_id: str | None) -> str:
    """The site a signed-in user works now: ``site_id`` when it is theirs or lists them, else their home."""
    if not site_id or site_id == user.site_id or len(site_id) > 64:
        return user.site_id
    site = await session.get(Site, site_id)
    return site_id if site is not None and user.id in network_staff(site) else user.site_id


async def site_members(session: AsyncSession, site_id: str) -> ColumnElement[bool]:
    """A filter on StaffUser for the people who work a site: its own staff and the network staff it lists."""
    site = await session.get(Site, site_id)
    extra = sorted(network_staff(site)) if site is not None else []
    own = StaffUser.site_id == site_id
    return or_(own, StaffUser.id.in_(extra)) if extra else own


async def grant_site(session: AsyncSession, *, email: str, site_id: str, revoke: bool = False) -> StaffUser:
    """Let a user of another site work ``site_id`` (or, with ``revoke``, stop them).

    Raises:
        NetworkInputError: no such site or user, or the site is the user's own (field ``site``/``email``).
    """
    site = await session.get(Site, site_id)
    if site is None:
        raise NetworkInputError("site", f"no site {site_id!r}")
    user = await session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if user is None:
        raise NetworkInputError("email", f"no staff user {email.strip().lower()}")
    if user.site_id == site_id:
        raise NetworkInputError("site", f"{site_id} is already {user.email}'s own site")
    ids = set(network_staff(site))
    ids = ids - {user.id} if revoke else ids | {user.id}
    # A new dict, so the JSON column is seen as changed.
    site.settings = {**(site.settings or {}), NETWORK_STAFF: sorted(ids)}
    return user
