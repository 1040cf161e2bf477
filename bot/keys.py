"""Typed application keys: the one place the aiohttp app's shared state is named."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import jinja2
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.db.worker import DbWorker
    from bot.jobs import JobContext
    from bot.sms.channel import Channel
    from bot.sms.inbound_store import InboundStore
    from bot.sms.inbox import Inbox
    from bot.sms.service import Background, Messaging
    from bot.sms.statuses import StatusWriter
    from scheduler.dispatcher import Dispatcher

__all__ = [
    "BACKGROUND",
    "CHANNEL",
    "CLOCK",
    "DB_WORKER",
    "DISPATCHER",
    "ENGINE",
    "HTTP",
    "INBOUND_STORE",
    "INBOX",
    "JOB_CONTEXT",
    "MESSAGING",
    "REGISTRY",
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
MESSAGING: web.AppKey[Messaging] = web.AppKey("messaging")
JOB_CONTEXT: web.AppKey[JobContext] = web.AppKey("job_context")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
# The Prometheus registry /metrics serves (the dispatcher's series live in it).
REGISTRY = web.AppKey("registry", CollectorRegistry)
# The staff pages' own Jinja environment.
WEB_JINJA = web.AppKey("web_jinja", jinja2.Environment)
