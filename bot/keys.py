"""Typed application keys: the one place the aiohttp app's shared state is named."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.settings import Settings

__all__ = ["CLOCK", "ENGINE", "HTTP", "SCHEDULER", "SESSIONMAKER", "SETTINGS", "SERVICES"]

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
HTTP = web.AppKey("http", aiohttp.ClientSession)
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
SERVICES = web.AppKey("services", object)
