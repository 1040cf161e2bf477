"""Typed application keys: the one place the aiohttp app's shared state is named."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import aiohttp
import jinja2
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.api.routes import ApiRoute
    from bot.channel import Channel
    from bot.dbthread import DbWorker
    from bot.inbound_store import InboundStore
    from bot.inbox import Inbox
    from bot.services import Background
    from bot.statuses import StatusWriter

__all__ = [
    "API_ROUTES",
    "BACKGROUND",
    "CHANNEL",
    "CLOCK",
    "ENGINE",
    "HTTP",
    "INBOUND_STORE",
    "INBOX",
    "JOBS",
    "SCHEDULER",
    "SESSIONMAKER",
    "SETTINGS",
    "STATUS_WRITER",
    "WEB_JINJA",
]

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
HTTP = web.AppKey("http", aiohttp.ClientSession)
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
CHANNEL: web.AppKey[Channel] = web.AppKey("channel")
INBOX: web.AppKey[Inbox] = web.AppKey("inbox")
INBOUND_STORE: web.AppKey[InboundStore] = web.AppKey("inbound_store")
DB_WORKER: web.AppKey[DbWorker] = web.AppKey("db_worker")
BACKGROUND: web.AppKey[Background] = web.AppKey("background")
STATUS_WRITER: web.AppKey[StatusWriter] = web.AppKey("status_writer")
# Periodic jobs: (id, interval seconds, coroutine function); started by one APScheduler after startup.
JOBS = web.AppKey("jobs", list[tuple[str, float, Callable[[], Awaitable[object]]]])
# The staff pages' own Jinja environment, and the REST route table the OpenAPI document is built from.
WEB_JINJA = web.AppKey("web_jinja", jinja2.Environment)
API_ROUTES: web.AppKey[list[ApiRoute]] = web.AppKey("api_routes")
