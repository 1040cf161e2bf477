"""What every staff page's layout (base.html) needs: the site, the sites to switch to, labels, static path."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Site
from bot.staff.auth import Principal
from bot.staff.network import SiteChoice, sites_for_user

__all__ = ["QUEUE_LABELS", "ROLE_LABELS", "STATIC_PREFIX", "base_context", "layout_context"]

STATIC_PREFIX = "/static/staff/"
QUEUE_LABELS = {
    "urgent_clinical": "Urgent clinical",
    "clinical": "Clinical",
    "refill": "Refill",
    "financial": "Financial",
    "general": "General",
}
ROLE_LABELS = {
    "pharmacist": "Pharmacist",
    "technician": "Technician",
    "financial_navigator": "Financial navigator",
    "clinic_admin": "Clinic admin",
}


def base_context(principal: Principal, site: Site, sites: list[SiteChoice] | None = None) -> dict[str, Any]:
    """The layout's values; ``sites`` (more than one) shows the site switcher."""
    return {
        "principal": principal,
        "site": site,
        "sites": sites or [],
        "csrf": principal.csrf_token,
        "role_label": ROLE_LABELS.get(principal.role, principal.role),
        "queue_labels": QUEUE_LABELS,
        "static": STATIC_PREFIX,
    }


async def layout_context(
    session: AsyncSession, principal: Principal, site: Site | None = None
) -> dict[str, Any]:
    """``base_context`` for the principal's current site, with the sites a network user may switch to."""
    site = site or await session.get(Site, principal.site_id)
    assert site is not None
    sites: list[SiteChoice] = []
    if principal.user_id is not None:
        home = principal.home_site_id or principal.site_id
        sites = await sites_for_user(session, principal.user_id, home)
    return base_context(principal, site, sites if len(sites) > 1 else [])
