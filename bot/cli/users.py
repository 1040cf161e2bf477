"""`midbot users create|grant` and `midbot tokens create`: staff accounts, network access and API tokens."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys

from bot.cli.common import CliError, open_store, settings_from_env
from bot.clock import utcnow
from bot.settings import Settings
from bot.staff.auth import ROLES, AuthInputError, create_api_token, create_user
from bot.staff.network import NetworkInputError, grant_site

ORDER = 60
_LOGGER = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `users create`, `users grant` and `tokens create`."""
    users = sub.add_parser("users", help="manage staff accounts")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    create = users_sub.add_parser(
        "create",
        help="create a staff user; the password is read from the first line of stdin",
        description="Create a staff user of one site. The password (at least 12 characters) is read "
        "from the first line of standard input, so it never shows in the process list.",
    )
    create.add_argument("--site", required=True, metavar="ID", help="the site the user works for")
    create.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    create.add_argument("--email", required=True, help="the sign-in email (unique)")
    create.add_argument("--name", default="", help="display name (optional)")
    create.add_argument(
        "--update", action="store_true", help="if the email exists, change its site, role and password"
    )
    create.set_defaults(func=cmd_users_create)
    grant = users_sub.add_parser(
        "grant",
        help="let a user of one site work another site of the network too (a network admin)",
        description="Let a staff user also work another site (they switch between their sites on the "
        "staff pages, with the same role). --revoke takes it back.",
    )
    grant.add_argument("--email", required=True, help="the user's sign-in email")
    grant.add_argument("--site", required=True, metavar="ID", help="the other site they may work")
    grant.add_argument("--revoke", action="store_true", help="stop them working that site")
    grant.set_defaults(func=cmd_users_grant)

    tokens = sub.add_parser("tokens", help="manage REST API tokens")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    token = tokens_sub.add_parser(
        "create",
        help="create an API token for a site and print it once",
        description="Create an API token scoped to one site. It is printed once; only its SHA-256 "
        "hash is stored. Send it as `Authorization: Bearer TOKEN`.",
    )
    token.add_argument("--site", required=True, metavar="ID", help="the site the token acts for")
    token.add_argument("--name", default="", help="a label, e.g. the system that uses it")
    token.set_defaults(func=cmd_tokens_create)


def _read_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Password (12+ characters): ")
    line = sys.stdin.readline()
    if not line:
        raise CliError(
            "password: none given on stdin (pipe it in, e.g. `printf '%s\\n' \"$PW\" | midbot ...`)"
        )
    return line.rstrip("\r\n")


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> tuple[int, bool]:
    async with open_store(settings) as (_engine, sessionmaker):
        async with sessionmaker.begin() as session:
            user, created = await create_user(
                session,
                site_id=args.site,
                email=args.email,
                role=args.role,
                password=password,
                name=args.name,
                update=args.update,
                now=utcnow(),
            )
            return user.id, created


def cmd_users_create(args: argparse.Namespace) -> int:
    """Create (or with --update, change) a staff user."""
    password = _read_password()
    settings = settings_from_env()
    try:
        user_id, created = asyncio.run(_create_user(settings, args, password))
    except AuthInputError as exc:
        raise CliError(str(exc)) from None
    verb = "created" if created else "updated"
    print(f"{verb} user {user_id}: {args.email.strip().lower()} ({args.role}, site {args.site})")
    return 0


async def _grant(settings: Settings, args: argparse.Namespace) -> int:
    async with open_store(settings) as (_engine, sessionmaker):
        async with sessionmaker.begin() as session:
            user = await grant_site(session, email=args.email, site_id=args.site, revoke=args.revoke)
            return user.id


def cmd_users_grant(args: argparse.Namespace) -> int:
    """Let a user work another site (or, with --revoke, stop)."""
    settings = settings_from_env()
    try:
        user_id = asyncio.run(_grant(settings, args))
    except NetworkInputError as exc:
        raise CliError(str(exc)) from None
    verb = "may no longer work" if args.revoke else "may now work"
    print(f"user {user_id} {verb} site {args.site}")
    return 0


async def _create_token(settings: Settings, args: argparse.Namespace) -> str:
    async with open_store(settings) as (_engine, sessionmaker):
        async with sessionmaker.begin() as session:
            row, token = await create_api_token(session, site_id=args.site, name=args.name, now=utcnow())
            _LOGGER.info("api token %s created for site %s", row.id, args.site)
            return token


def cmd_tokens_create(args: argparse.Namespace) -> int:
    """Print a new API token (once)."""
    settings = settings_from_env()
    try:
        token = asyncio.run(_create_token(settings, args))
    except AuthInputError as exc:
        raise CliError(str(exc)) from None
    print(token)
    return 0
