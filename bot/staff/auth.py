"""Staff sign-in: password hashing, server-side sessions, CSRF, login throttling, API tokens and roles."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from bot.clock import utcnow
from bot.db import audit
from bot.db.models import ApiToken, LoginAttempt, Site, StaffSession, StaffUser
from bot.db.unit import in_session
from bot.keys import CLOCK, SESSIONMAKER, SETTINGS
from bot.staff.network import site_for_user

__all__ = [
    "ADDRESS_MAX_DELAY",
    "ADDRESS_SLOWDOWN_AFTER",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOGIN_CSRF_COOKIE",
    "MIN_PASSWORD_LENGTH",
    "MIN_PASSWORD_SCORE",
    "QUEUES",
    "RECORD_EDITORS",
    "ROLES",
    "ROLE_QUEUES",
    "SESSION_COOKIE",
    "SITE_COOKIE",
    "THROTTLE_LIMIT",
    "THROTTLE_WINDOW",
    "AuthInputError",
    "BadCredentials",
    "LoginThrottled",
    "Principal",
    "address_delay",
    "authenticate_password",
    "check_password_policy",
    "clear_session_cookie",
    "constant_time_equal",
    "create_api_token",
    "create_user",
    "end_session",
    "get_scoped",
    "hash_password",
    "hash_token",
    "load_session",
    "new_csrf_token",
    "principal_for_token",
    "principal_from_request",
    "session_principal",
    "set_session_cookie",
    "set_site_cookie",
    "start_session",
    "verify_password",
]

_LOGGER = logging.getLogger(__name__)
_Scoped = TypeVar("_Scoped")

ROLES: tuple[str, ...] = ("pharmacist", "technician", "financial_navigator", "clinic_admin")
QUEUES: tuple[str, ...] = ("urgent_clinical", "clinical", "refill", "financial", "general")
# Which queues each role works. API tokens (the pharmacy system acting for the site) work every queue.
ROLE_QUEUES: dict[str, tuple[str, ...]] = {
    "pharmacist": ("urgent_clinical", "clinical", "refill", "general"),
    "technician": ("urgent_clinical", "clinical", "refill", "general"),
    "financial_navigator": ("financial", "general"),
    "clinic_admin": QUEUES,
    "integration": QUEUES,
}
# Only these may close an urgent clinical task (a technician may work it, not resolve it).
URGENT_RESOLVERS = frozenset({"pharmacist", "integration"})
# Only these change the dispensary record (imports, patient and fill edits); every other role only reads it.
RECORD_EDITORS = frozenset({"clinic_admin", "pharmacist", "integration"})

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
# zxcvbn score (0-4) a password needs: 3 is "safely unguessable" (about 10^8 guesses or more) in its terms.
MIN_PASSWORD_SCORE = 3
_ZXCVBN_MAX = 72  # zxcvbn refuses longer input
THROTTLE_LIMIT = 5  # failed sign-ins for one email in the window lock that account until the window passes
THROTTLE_WINDOW = timedelta(minutes=15)
# One address is slowed down, never locked: a clinic's staff often share one NAT address, and one person's
# typos must not lock out the whole pharmacy. After this many failures from it in the window, each next
# attempt must wait 1 s, 2 s, 4 s ... (at most ADDRESS_MAX_DELAY) after the last failure, which still
# turns password spraying across many emails into a crawl.
ADDRESS_SLOWDOWN_AFTER = 10
ADDRESS_MAX_DELAY = timedelta(seconds=60)
SESSION_COOKIE = "midbot_session"
# The site a network user works now. Only a choice among the sites they may work: it is checked against the
# sites' grants on every request, so a forged value falls back to the user's own site.
SITE_COOKIE = "midbot_site"
LOGIN_CSRF_COOKIE = "midbot_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PREFIX = "mbt_"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_HASHER = PasswordHasher()
# Verified when the email is unknown, so a wrong email costs as much time as a wrong password.
_DUMMY_HASH = _HASHER.hash("midbot-no-such-user-password")


class AuthInputError(ValueError):
    """Bad input for a user or token (the message names the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class LoginThrottled(Exception):
    """Too many failed sign-ins: this account is locked for the window, or this address must wait.

    Attributes:
        scope: ``account`` (THROTTLE_LIMIT failures for the email) or ``address`` (slowed down).
        retry_after: whole seconds until an attempt is looked at again.
    """

    def __init__(self, scope: Literal["account", "address"], retry_after: int) -> None:
        super().__init__(f"sign-in throttled ({scope}); retry after {retry_after} s")
        self.scope = scope
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in staff user or an API token, always bound to one site.

    Attributes:
        kind: "user" or "token".
        id: the StaffUser or ApiToken id.
        site_id: the tenant every query of this caller is filtered by.
        role: the staff role, or "integration" for an API token.
        email: the user's email (empty for tokens).
        csrf_token: the session's CSRF token (None for tokens, which need none).
        home_site_id: the user's own site, when ``site_id`` is another site of the network they switched
            to (``bot.staff.network``); empty otherwise.
    """

    kind: Literal["user", "token"]
    id: int
    site_id: str
    role: str
    email: str = ""
    csrf_token: str | None = None
    home_site_id: str = ""

    @property
    def actor(self) -> str:
        """The audit actor string: ``user:ID`` or ``token:ID``."""
        return f"{self.kind}:{self.id}"

    @property
    def user_id(self) -> int | None:
        """The staff user id, or None for an API token."""
        return self.id if self.kind == "user" else None

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues this caller works, in display order."""
        return ROLE_QUEUES.get(self.role, ())

    def can_work(self, queue: str) -> bool:
        """True when this caller may see and act on tasks of ``queue``."""
        return queue in self.queues

    def can_resolve(self, queue: str) -> bool:
        """True when this caller may close a task of ``queue`` (urgent clinical: pharmacists only)."""
        if queue == "urgent_clinical":
            return self.role in URGENT_RESOLVERS
        return self.can_work(queue)

    @property
    def can_edit_records(self) -> bool:
        """Clinic admins, pharmacists and API tokens may change patients, prescriptions and fills."""
        return self.role in RECORD_EDITORS

    @property
    def can_read_audit(self) -> bool:
        """Clinic admins and API tokens read the audit trail and the signal feed."""
        return self.role in ("clinic_admin", "integration")


# -- passwords -------------------------------------------------------------------------------------------


def check_password_policy(password: str, user_inputs: Sequence[str] = ()) -> None:
    """Raise AuthInputError when the password is too short, too long, or common or easy to guess.

    Guessability is zxcvbn's estimate, offline: its bundled lists of breached passwords, words and names,
    plus keyboard patterns, dates, repeats and l33t spellings (``P@ssw0rd2026!`` is caught, where a plain
    list would miss it). ``user_inputs`` (the email, the name, the site) count as known to an attacker.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthInputError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AuthInputError("password", f"must be at most {MAX_PASSWORD_LENGTH} characters")
    # zxcvbn's cost grows with length: the first characters decide (a strong prefix is a strong password).
    words = [value.lower() for value in user_inputs if value]
    inputs = [*words, *(part for word in words for part in re.split(r"[@.\s_-]+", word) if len(part) > 2)]
    estimate = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=inputs)
    if estimate["score"] < MIN_PASSWORD_SCORE:
        hint = estimate["feedback"]["warning"] or "add more words or characters that do not follow a pattern"
        raise AuthInputError("password", f"is too common or easy to guess ({hint.rstrip('.').lower()})")


def hash_password(password: str) -> str:
    """An argon2id hash of the password (salted, self-describing)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the hash; never raises on a malformed hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def constant_time_equal(a: str | None, b: str | None) -> bool:
    """Compare two secrets without leaking where they differ; None never matches."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def normalise_email(email: str) -> str:
    """Emails are matched case-insensitively, without surrounding spaces."""
    return email.strip().lower()


async def create_user(
    session: AsyncSession,
    *,
    site_id: str,
    email: str,
    role: str,
    password: str,
    now: datetime | None = None,
    name: str = "",
    update: bool = False,
) -> tuple[StaffUser, bool]:
    """Create a staff user (or, with ``update``, change an existing one's role, site and password).

    Returns:
        (user, created): created is False when an existing user was updated.

    Raises:
        AuthInputError: unknown site or role, malformed email, weak password, or the email exists
            and ``update`` is False.
    """
    email = normalise_email(email)
    if role not in ROLES:
        raise AuthInputError("role", f"must be one of {', '.join(ROLES)}")
    if not _EMAIL.match(email):
        raise AuthInputError("email", f"not an email address: {email!r}")
    if await session.get(Site, site_id) is None:
        raise AuthInputError("site", f"no site {site_id!r} (add it with `midbot sites add`)")
    existing = await session.scalar(select(StaffUser).where(StaffUser.email == email))
    if existing is not None and not update:
        raise AuthInputError("email", f"a user {email} already exists (use --update to change it)")
    check_password_policy(password, (email, name, site_id))
    password_hash = await asyncio.to_thread(hash_password, password)
    if existing is not None:
        existing.site_id, existing.role, existing.password_hash = site_id, role, password_hash
        existing.active = True
        if name:
            existing.name = name
        # A changed password or role ends the user's open sessions.
        await session.execute(delete(StaffSession).where(StaffSession.user_id == existing.id))
        return existing, False
    user = StaffUser(
        site_id=site_id,
        email=email,
        name=name,
        role=role,
        password_hash=password_hash,
        created_at=now or utcnow(),
    )
    session.add(user)
    await session.flush()
    return user, True


# -- sign-in and throttling ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Failures:
    by_email: int
    by_remote: int
    first_by_email: datetime | None
    last_by_remote: datetime | None


async def _recent_failures(session: AsyncSession, *, email: str, remote: str, now: datetime) -> _Failures:
    since = now - THROTTLE_WINDOW
    recent = LoginAttempt.created_at > since
    by_email, first = (
        await session.execute(
            select(func.count(LoginAttempt.id), func.min(LoginAttempt.created_at)).where(
                LoginAttempt.email == email, recent
            )
        )
    ).one()
    by_remote, last = 0, None
    if remote:
        by_remote, last = (
            await session.execute(
                select(func.count(LoginAttempt.id), func.max(LoginAttempt.created_at)).where(
                    LoginAttempt.remote == remote, recent
                )
            )
        ).one()
    return _Failures(by_email or 0, by_remote or 0, first, last)


def address_delay(failures: int) -> timedelta:
    """How long an address must wait after its last failure, having failed ``failures`` times in the window."""
    if failures < ADDRESS_SLOWDOWN_AFTER:
        return timedelta(0)
    return min(ADDRESS_MAX_DELAY, timedelta(seconds=2 ** min(failures - ADDRESS_SLOWDOWN_AFTER, 16)))


def _throttle(failures: _Failures, now: datetime) -> LoginThrottled | None:
    if failures.by_email >= THROTTLE_LIMIT and failures.first_by_email is not None:
        unlock = failures.first_by_email + THROTTLE_WINDOW
        return LoginThrottled("account", max(1, math.ceil((unlock - now).total_seconds())))
    if failures.last_by_remote is not None:
        wait = failures.last_by_remote + address_delay(failures.by_remote) - now
        if wait > timedelta(0):
            return LoginThrottled("address", max(1, math.ceil(wait.total_seconds())))
    return None


async def _audit_failure(
    session: AsyncSession, user: StaffUser | None, *, reason: str, remote: str, now: datetime
) -> None:
    # Written for the user's site (the admin sees attempts on their staff); an unknown email has no site.
    await in_session(
        session,
        audit.record,
        actor=f"user:{user.id}" if user else "anonymous",
        action="staff.login_failed",
        site_id=user.site_id if user else None,
        target=f"staff_user:{user.id}" if user else "",
        detail={"reason": reason, "remote": remote},
        at=now,
    )


async def authenticate_password(
    session: AsyncSession, *, email: str, password: str, remote: str, now: datetime
) -> StaffUser | None:
    """Check an email and password; a failure is recorded for throttling and as a ``staff.login_failed`` audit
    event (reason ``wrong_password``, ``unknown_email``, ``account_locked`` or ``address_slowed``).

    Returns:
        The active StaffUser, or None when the email or password is wrong.

    Raises:
        LoginThrottled: THROTTLE_LIMIT failures for this email within THROTTLE_WINDOW (the account is locked
            until the oldest of them leaves the window), or this address has failed ADDRESS_SLOWDOWN_AFTER
            times or more and its delay since the last failure has not passed. Raised before the password is
            looked at, so the right one is refused too. The caller commits, so the audit event is kept.
    """
    email = normalise_email(email)[:200]
    remote = (remote or "")[:64]
    failures = await _recent_failures(session, email=email, remote=remote, now=now)
    user = await session.scalar(select(StaffUser).where(StaffUser.email == email, StaffUser.active.is_(True)))
    throttled = _throttle(failures, now)
    if throttled is not None:
        _LOGGER.warning(
            "sign-in throttled (%s; failures: email %d, address %d)",
            throttled.scope,
            failures.by_email,
            failures.by_remote,
        )
        reason = "account_locked" if throttled.scope == "account" else "address_slowed"
        await _audit_failure(session, user, reason=reason, remote=remote, now=now)
        raise throttled
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not ok:
        session.add(LoginAttempt(email=email, remote=remote, created_at=now))
        await _audit_failure(
            session, user, reason="wrong_password" if user else "unknown_email", remote=remote, now=now
        )
        _LOGGER.info("sign-in failed (user %s)", user.id if user else "unknown")
        return None
    await session.execute(delete(LoginAttempt).where(LoginAttempt.email == email))
    user.last_login_at = now
    return user


# -- sessions --------------------------------------------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_csrf_token() -> str:
    """A fresh random CSRF token."""
    return secrets.token_urlsafe(32)


async def start_session(
    session: AsyncSession, user: StaffUser, *, now: datetime, max_age_minutes: int
) -> tuple[str, StaffSession]:
    """Open a server-side session; returns the cookie value (random; only its hash is stored)."""
    cookie = secrets.token_urlsafe(32)
    row = StaffSession(
        id=_digest(cookie),
        user_id=user.id,
        csrf_token=new_csrf_token(),
        expires_at=now + timedelta(minutes=max_age_minutes),
        created_at=now,
    )
    session.add(row)
    # Expired sessions of this user are swept here rather than by a job.
    await session.execute(
        delete(StaffSession).where(StaffSession.user_id == user.id, StaffSession.expires_at <= now)
    )
    return cookie, row


async def load_session(
    session: AsyncSession, cookie: str | None, *, now: datetime
) -> tuple[StaffSession, StaffUser] | None:
    """The live session and its active user for a cookie value, or None (unknown, expired, user disabled)."""
    if not cookie or len(cookie) > 200:
        return None
    row = await session.get(StaffSession, _digest(cookie))
    if row is None or row.expires_at <= now:
        return None
    user = await session.get(StaffUser, row.user_id)
    if user is None or not user.active:
        return None
    return row, user


async def end_session(session: AsyncSession, cookie: str | None) -> None:
    """Delete the session of this cookie value (sign-out)."""
    if cookie:
        await session.execute(delete(StaffSession).where(StaffSession.id == _digest(cookie)))


def session_principal(row: StaffSession, user: StaffUser, site_id: str | None = None) -> Principal:
    """The Principal of a signed-in user, working ``site_id`` (a site of their network) or their own site."""
    if site_id and site_id != user.site_id:
        return Principal("user", user.id, site_id, user.role, user.email, row.csrf_token, user.site_id)
    return Principal("user", user.id, user.site_id, user.role, user.email, row.csrf_token)


# -- API tokens ------------------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    """SHA-256 of a token (tokens are long and random, so a fast hash is enough)."""
    return _digest(token)


async def create_api_token(
    session: AsyncSession, *, site_id: str, name: str, now: datetime
) -> tuple[ApiToken, str]:
    """Create an API token for a site; returns the row and the token, which is never stored or shown again.

    Raises:
        AuthInputError: unknown site, or a name longer than 100 characters.
    """
    if await session.get(Site, site_id) is None:
        raise AuthInputError("site", f"no site {site_id!r} (add it with `midbot sites add`)")
    if len(name) > 100:
        raise AuthInputError("name", "must be at most 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(site_id=site_id, name=name, token_hash=hash_token(token), created_at=now)
    session.add(row)
    await session.flush()
    return row, token


async def principal_for_token(session: AsyncSession, token: str) -> Principal | None:
    """The Principal of a live (not revoked) API token, or None."""
    if not token or len(token) > 200:
        return None
    row = await session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    )
    if row is None:
        return None
    return Principal("token", row.id, row.site_id, "integration")


# -- request glue ----------------------------------------------------------------------------------------


class BadCredentials(Exception):
    """An Authorization header was sent but is not a live bearer token."""


async def principal_from_request(request: web.Request, *, allow_token: bool = True) -> Principal | None:
    """Who is calling: a bearer token (when allowed) or the session cookie; None when neither.

    Raises:
        BadCredentials: an Authorization header that is not ``Bearer <live token>``.
    """
    app = request.app
    header = request.headers.get("Authorization", "")
    async with app[SESSIONMAKER].begin() as session:
        if header and allow_token:
            scheme, _, token = header.partition(" ")
            principal = (
                await principal_for_token(session, token.strip()) if scheme.lower() == "bearer" else None
            )
            if principal is None:
                raise BadCredentials()
            return principal
        loaded = await load_session(session, request.cookies.get(SESSION_COOKIE), now=app[CLOCK].now())
        if loaded is None:
            return None
        row, user = loaded
        return session_principal(
            row, user, await site_for_user(session, user, request.cookies.get(SITE_COOKIE))
        )


def _set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    """A staff cookie: HttpOnly (no script reads it), SameSite=Lax, Secure behind TLS, as long as a session."""
    settings = request.app[SETTINGS]
    response.set_cookie(
        name,
        value,
        max_age=settings.session_max_age_minutes * 60,
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
        path="/",
    )


def set_session_cookie(response: web.StreamResponse, request: web.Request, cookie: str) -> None:
    """The session cookie."""
    _set_cookie(response, request, SESSION_COOKIE, cookie)


def clear_session_cookie(response: web.StreamResponse) -> None:
    """Remove the session cookie (and the chosen site) from the browser."""
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(SITE_COOKIE, path="/")


def set_site_cookie(response: web.StreamResponse, request: web.Request, site_id: str) -> None:
    """Remember the site a network user switched to (for this browser, as long as the session)."""
    _set_cookie(response, request, SITE_COOKIE, site_id)


async def get_scoped(
    session: AsyncSession, model: type[_Scoped], key: object, site_id: str
) -> _Scoped | None:
    """Load a row by primary key only if it belongs to ``site_id`` (the filter is in the query).

    A row of another site is indistinguishable from a missing one, so callers answer 404 for both.
    """
    column = model.site_id  # type: ignore[attr-defined]
    primary = model.id  # type: ignore[attr-defined]
    return await session.scalar(select(model).where(primary == key, column == site_id))
