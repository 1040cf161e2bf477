"""Staff sign-in: passwords, throttling, sessions and their cookie, CSRF on the login form, tokens, the CLI."""

from __future__ import annotations

import asyncio
import io
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.clock import FixedClock
from bot.db.models import ApiToken, AuditEvent, LoginAttempt, Site, StaffSession, StaffUser
from bot.db.session import make_sessionmaker
from bot.keys import SESSIONMAKER
from bot.settings import Settings
from bot.staff.auth import (
    ADDRESS_MAX_DELAY,
    ADDRESS_SLOWDOWN_AFTER,
    THROTTLE_LIMIT,
    AuthInputError,
    LoginThrottled,
    address_delay,
    authenticate_password,
    check_password_policy,
    create_api_token,
    create_user,
    hash_password,
    principal_for_token,
    verify_password,
)
from tests.bot.support import PASSWORD, build_app, csrf_of, email, migrate, seed, sign_in


async def _site(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine).begin() as session:
        session.add(Site(id="north", name="North", phone="+13125550100", time_zone="America/Chicago"))


@pytest.mark.parametrize(
    "password",
    ["password1234", "Password123!", "P@ssw0rd2026!", "iloveyou1234", "1234567890123", "aaaaaaaaaaaaaaaa",
     "letmein12345", "northnorth12"],
)  # fmt: skip
def test_common_or_guessable_passwords_are_refused(password: str) -> None:
    with pytest.raises(AuthInputError, match="too common or easy to guess") as caught:
        check_password_policy(password, ("rph@north.example", "", "north"))
    assert caught.value.field == "password"


@pytest.mark.parametrize(
    "password", ["correct-horse-battery-staple", "yodel-marmot-fennel", "Xk9#mQ2!vL7@pR4"]
)
def test_long_unguessable_passwords_pass(password: str) -> None:
    check_password_policy(password, ("rph@north.example",))
    check_password_policy(password + "x" * 900)  # long ones are judged by their first characters, quickly


def test_passwords_are_argon2_hashes() -> None:
    hashed = hash_password("a long enough password")
    assert hashed.startswith("$argon2id$") and "a long enough password" not in hashed
    assert verify_password(hashed, "a long enough password")
    assert not verify_password(hashed, "a long enough passworD")
    assert not verify_password("not-a-hash", "anything at all")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"password": "short"}, "password"),
        ({"role": "janitor"}, "role"),
        ({"email": "not-an-email"}, "email"),
        ({"site_id": "nowhere"}, "site"),
    ],
)
async def test_create_user_rejects_bad_input(
    engine: AsyncEngine, clock: FixedClock, kwargs: dict, field: str
) -> None:
    await _site(engine)
    args = {
        "site_id": "north",
        "email": "rph@north.example",
        "role": "pharmacist",
        "password": "xk9-lantern-quarry",
    } | kwargs
    async with make_sessionmaker(engine).begin() as session:
        with pytest.raises(AuthInputError) as caught:
            await create_user(session, now=clock.now(), **args)
    assert caught.value.field == field


async def test_an_existing_email_needs_update(engine: AsyncEngine, clock: FixedClock) -> None:
    await _site(engine)
    maker = make_sessionmaker(engine)
    async with maker.begin() as session:
        user, created = await create_user(
            session,
            site_id="north",
            email="RPh@North.example ",
            role="technician",
            password="xk9-lantern-quarry",
            now=clock.now(),
        )
        assert created and user.email == "rph@north.example"
        session.add(
            StaffSession(
                id="s" * 64, user_id=user.id, csrf_token="c", expires_at=clock.now() + timedelta(hours=1)
            )
        )
    async with maker.begin() as session:
        with pytest.raises(AuthInputError, match="already exists"):
            await create_user(session, site_id="north", email="rph@north.example", role="pharmacist",
                              password="yodel-marmot-fennel", now=clock.now())  # fmt: skip
    async with maker.begin() as session:
        user, created = await create_user(session, site_id="north", email="rph@north.example", role="pharmacist",
                                          password="yodel-marmot-fennel", now=clock.now(), update=True)  # fmt: skip
        assert not created and user.role == "pharmacist"
        assert verify_password(user.password_hash, "yodel-marmot-fennel")
    async with maker() as session:
        assert list(await session.scalars(select(StaffSession))) == []  # sessions ended on change


async def test_throttling_by_email_and_by_address(engine: AsyncEngine, clock: FixedClock) -> None:
    await _site(engine)
    maker = make_sessionmaker(engine)
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)  # fast to verify
    staff = ["rph", *(f"tech{n}" for n in range(5))]
    async with maker.begin() as session:
        for name in staff:
            session.add(
                StaffUser(
                    site_id="north", email=f"{name}@north.example", role="technician", password_hash=cheap
                )
            )

    async def attempt(mail: str, password: str, remote: str) -> object:
        # As the sign-in page does: a throttled attempt still commits its audit event.
        async with maker.begin() as session:
            try:
                return await authenticate_password(
                    session, email=mail, password=password, remote=remote, now=clock.now()
                )
            except LoginThrottled as exc:
                throttled = exc
        raise throttled

    assert await attempt("rph@north.example", PASSWORD, "10.0.0.1") is not None
    for n in range(THROTTLE_LIMIT):
        assert await attempt("RPh@north.example", f"wrong {n}", f"10.0.1.{n}") is None
    with pytest.raises(LoginThrottled) as locked:
        await attempt("rph@north.example", PASSWORD, "10.0.2.1")  # the right password, still refused
    assert locked.value.scope == "account" and locked.value.retry_after == 15 * 60
    clock.advance(minutes=16)
    assert await attempt("rph@north.example", PASSWORD, "10.0.2.1") is not None
    async with maker() as session:
        assert (
            list(await session.scalars(select(LoginAttempt).where(LoginAttempt.email == "rph@north.example")))
            == []
        )

    # One address failing for many emails (each under its own limit) is slowed down, never locked: after
    # ADDRESS_SLOWDOWN_AFTER failures each attempt must wait longer after the last one (1 s, 2 s, 4 s ...).
    for n in range(ADDRESS_SLOWDOWN_AFTER):
        assert await attempt(f"tech{n % 5}@north.example", "whatever-pass", "10.9.9.9") is None
    with pytest.raises(LoginThrottled) as slowed:
        await attempt("rph@north.example", PASSWORD, "10.9.9.9")
    assert slowed.value.scope == "address" and slowed.value.retry_after == 1
    assert await attempt("rph@north.example", PASSWORD, "10.0.3.3") is not None  # other addresses: no wait
    clock.advance(seconds=1)
    assert await attempt("tech0@north.example", "wrong again", "10.9.9.9") is None  # 11 failures: wait 2 s
    clock.advance(seconds=1)
    with pytest.raises(LoginThrottled) as slowed:
        await attempt("rph@north.example", PASSWORD, "10.9.9.9")
    assert slowed.value.retry_after == 1
    clock.advance(seconds=1)
    assert await attempt("rph@north.example", PASSWORD, "10.9.9.9") is not None  # the whole NAT is not locked
    async with maker() as session:
        failed = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "staff.login_failed"))
        )
    reasons = [e.detail["reason"] for e in failed]
    assert reasons.count("wrong_password") == THROTTLE_LIMIT + ADDRESS_SLOWDOWN_AFTER + 1
    assert reasons.count("account_locked") == 1 and reasons.count("address_slowed") == 2
    assert all(e.site_id == "north" and e.actor.startswith("user:") for e in failed)
    assert {e.detail["remote"] for e in failed if e.detail["reason"] == "address_slowed"} == {"10.9.9.9"}


def test_address_delay_doubles_up_to_its_cap() -> None:
    delays = [address_delay(n).total_seconds() for n in range(ADDRESS_SLOWDOWN_AFTER + 12)]
    assert delays[:ADDRESS_SLOWDOWN_AFTER] == [0] * ADDRESS_SLOWDOWN_AFTER
    assert delays[ADDRESS_SLOWDOWN_AFTER : ADDRESS_SLOWDOWN_AFTER + 4] == [1, 2, 4, 8]
    assert max(delays) == ADDRESS_MAX_DELAY.total_seconds() == delays[-1]
    assert address_delay(10**6) == ADDRESS_MAX_DELAY


async def test_an_unknown_email_is_audited_without_a_site(engine: AsyncEngine, clock: FixedClock) -> None:
    await _site(engine)
    maker = make_sessionmaker(engine)
    async with maker.begin() as session:
        assert await authenticate_password(session, email="nobody@north.example", password="x" * 12,
                                           remote="10.1.1.1", now=clock.now()) is None  # fmt: skip
    async with maker() as session:
        [event] = list(await session.scalars(select(AuditEvent)))
    assert (event.action, event.actor, event.site_id) == ("staff.login_failed", "anonymous", None)
    assert event.detail == {"reason": "unknown_email", "remote": "10.1.1.1"}


async def test_tokens_are_stored_hashed_and_revocable(engine: AsyncEngine, clock: FixedClock) -> None:
    await _site(engine)
    maker = make_sessionmaker(engine)
    async with maker.begin() as session:
        row, token = await create_api_token(session, site_id="north", name="pharmacy system", now=clock.now())
    async with maker.begin() as session:
        stored = await session.get(ApiToken, row.id)
        assert stored is not None and token not in stored.token_hash and len(stored.token_hash) == 64
        principal = await principal_for_token(session, token)
        assert principal is not None and principal.site_id == "north" and principal.actor == f"token:{row.id}"
        stored.revoked_at = clock.now()
    async with maker() as session:
        assert await principal_for_token(session, token) is None
        assert await principal_for_token(session, "") is None


async def test_wrong_password_five_times_then_429_even_with_the_right_one(web_client) -> None:
    client, _seeded = web_client
    form = await client.get("/login")
    csrf = csrf_of(await form.text())
    for _ in range(5):
        wrong = await client.post(
            "/login", data={"email": email("pharmacist"), "password": "not the password", "csrf_token": csrf}
        )
        assert wrong.status == 401
        assert "do not match" in await wrong.text()
    right = await client.post(
        "/login",
        data={"email": email("pharmacist"), "password": PASSWORD, "csrf_token": csrf},
        allow_redirects=False,
    )
    assert right.status == 429 and right.headers["Retry-After"] == "900"
    assert "Too many failed sign-in attempts for this account. Wait 15 minutes" in await right.text()
    assert "midbot_session" not in {c.key for c in client.session.cookie_jar}


async def test_login_form_needs_its_csrf_token(web_client) -> None:
    client, _seeded = web_client
    await client.get("/login")
    missing = await client.post("/login", data={"email": email("pharmacist"), "password": PASSWORD})
    assert missing.status == 403
    forged = await client.post(
        "/login",
        data={"email": email("pharmacist"), "password": PASSWORD, "csrf_token": "forged-token-value-1234"},
    )
    assert forged.status == 403
    blank = await client.post(
        "/login",
        data={"email": "", "password": "", "csrf_token": csrf_of(await (await client.get("/login")).text())},
    )
    assert blank.status == 400


async def test_session_cookie_flags_expiry_and_logout(
    aiohttp_client, settings: Settings, clock: FixedClock
) -> None:
    settings = settings.model_copy(update={"secure_cookies": True, "session_max_age_minutes": 30})
    await migrate(settings)
    client = await aiohttp_client(build_app(settings, clock))
    await seed(client.server.app[SESSIONMAKER], clock.now())
    page = await client.get("/login")
    login_cookie = next(v for v in page.headers.getall("Set-Cookie") if v.startswith("midbot_login_csrf="))
    assert "secure" in login_cookie.lower()
    # The test client drops Secure cookies on plain http, so they are sent by hand.
    response = await client.post(
        "/login",
        data={"email": email("pharmacist"), "password": PASSWORD, "csrf_token": csrf_of(await page.text())},
        cookies={"midbot_login_csrf": login_cookie.split(";", 1)[0].split("=", 1)[1]},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/queues"
    header = next(v for v in response.headers.getall("Set-Cookie") if v.startswith("midbot_session="))
    lowered = header.lower()
    assert (
        "httponly" in lowered
        and "samesite=lax" in lowered
        and "secure" in lowered
        and "max-age=1800" in lowered
    )
    cookie = header.split(";", 1)[0].split("=", 1)[1]
    async with client.server.app[SESSIONMAKER]() as session:
        ids = list(await session.scalars(select(StaffSession.id)))
    assert cookie not in ids and len(ids) == 1  # only a hash of the cookie is stored

    jar = {"midbot_session": cookie}
    assert (await client.get("/queues", cookies=jar, allow_redirects=False)).status == 200
    clock.advance(minutes=31)
    expired = await client.get("/queues", cookies=jar, allow_redirects=False)
    assert expired.status == 303 and expired.headers["Location"].startswith("/login?next=/queues")
    assert (await client.get("/api/v1/tasks", cookies=jar)).status == 401


async def test_logout_ends_the_session(web_client) -> None:
    client, _seeded = web_client
    csrf = await sign_in(client, "pharmacist")
    no_token = await client.post("/logout", data={})
    assert no_token.status == 403
    out = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/login"
    async with client.server.app[SESSIONMAKER]() as session:
        assert list(await session.scalars(select(StaffSession))) == []
    again = await client.get("/queues", allow_redirects=False)
    assert again.status == 303


async def test_next_only_goes_to_our_own_pages(web_client) -> None:
    client, seeded = web_client
    form = await client.get(f"/login?next=/tasks/{seeded.tasks['refill']}")
    html = await form.text()
    assert f'value="/tasks/{seeded.tasks["refill"]}"' in html
    response = await client.post(
        "/login",
        data={
            "email": email("pharmacist"),
            "password": PASSWORD,
            "csrf_token": csrf_of(html),
            "next": "//evil.example/x",
        },
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/queues"


# -- the CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("MIDBOT_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env

    async def prepare() -> None:
        settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
        await migrate(settings)
        from bot.db.session import make_engine

        engine = make_engine(url)
        await _site(engine)
        await engine.dispose()

    asyncio.run(prepare())
    return url


def run_cli(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(argv)


def test_cli_users_create(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["users", "create", "--site", "north", "--role", "pharmacist", "--email", "rph@north.example"]
    assert run_cli(monkeypatch, base, "short\n") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 12" in err and "Traceback" not in err
    assert run_cli(monkeypatch, base, "") == 1
    assert "password" in capsys.readouterr().err
    for common in ("Password123!", "P@ssw0rd2026!", "qwertyuiop12", "rph@north.example1"):
        assert run_cli(monkeypatch, base, common + "\n") == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "password: is too common or easy to guess" in err, err

    assert run_cli(monkeypatch, base, PASSWORD + "\nignored second line\n") == 0
    assert "created user" in capsys.readouterr().out
    assert run_cli(monkeypatch, base, PASSWORD + "\n") == 1
    assert "already exists" in capsys.readouterr().err
    assert (
        run_cli(monkeypatch, [*base[:5], "technician", *base[6:], "--update"], "another-long-password\n") == 0
    )
    assert "updated user" in capsys.readouterr().out

    assert run_cli(monkeypatch, ["users", "create", "--site", "nowhere", "--role", "pharmacist",
                                 "--email", "x@y.example"], PASSWORD + "\n") == 1  # fmt: skip
    assert "no site" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        run_cli(
            monkeypatch, ["users", "create", "--site", "north", "--role", "boss", "--email", "x@y.example"]
        )
    assert usage.value.code == 2

    async def check() -> tuple[str, bool]:
        from bot.db.session import make_engine

        engine = make_engine(cli_db)
        async with make_sessionmaker(engine)() as session:
            user = await session.scalar(select(StaffUser).where(StaffUser.email == "rph@north.example"))
            assert user is not None
            result = (user.role, verify_password(user.password_hash, "another-long-password"))
        await engine.dispose()
        return result

    assert asyncio.run(check()) == ("technician", True)


def test_cli_tokens_create(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, ["tokens", "create", "--site", "north", "--name", "dispensary"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("mbt_") and len(token) > 40 and "\n" not in token
    assert run_cli(monkeypatch, ["tokens", "create", "--site", "nowhere"]) == 1
    assert "no site" in capsys.readouterr().err

    async def lookup() -> str | None:
        from bot.db.session import make_engine

        engine = make_engine(cli_db)
        async with make_sessionmaker(engine)() as session:
            principal = await principal_for_token(session, token)
        await engine.dispose()
        return principal.site_id if principal else None

    assert asyncio.run(lookup()) == "north"


def test_cli_users_grant_lets_a_user_work_another_site(
    cli_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def add_south() -> None:
        from bot.db.session import make_engine

        engine = make_engine(cli_db)
        async with make_sessionmaker(engine).begin() as session:
            session.add(Site(id="south", name="South", phone="+16125550100", time_zone="America/Chicago"))
        await engine.dispose()

    asyncio.run(add_south())
    create = ["users", "create", "--site", "north", "--role", "clinic_admin", "--email", "lead@north.example"]
    assert run_cli(monkeypatch, create, PASSWORD + "\n") == 0
    capsys.readouterr()
    grant = ["users", "grant", "--email", "lead@north.example", "--site", "south"]
    assert run_cli(monkeypatch, grant) == 0
    assert "may now work site south" in capsys.readouterr().out
    for argv, field in (
        (["users", "grant", "--email", "lead@north.example", "--site", "nowhere"], "site: no site"),
        (["users", "grant", "--email", "nobody@north.example", "--site", "south"], "email: no staff user"),
        (["users", "grant", "--email", "lead@north.example", "--site", "north"], "already"),
    ):
        assert run_cli(monkeypatch, argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and field in err and "Traceback" not in err, err

    async def listed() -> list[int]:
        from bot.db.session import make_engine

        engine = make_engine(cli_db)
        async with make_sessionmaker(engine)() as session:
            south = await session.get(Site, "south")
            assert south is not None
            ids = list((south.settings or {}).get("network_staff", []))
        await engine.dispose()
        return ids

    assert len(asyncio.run(listed())) == 1
    assert run_cli(monkeypatch, [*grant, "--revoke"]) == 0
    assert "may no longer work" in capsys.readouterr().out
    assert asyncio.run(listed()) == []
