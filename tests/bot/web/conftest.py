"""The browser tests' fixtures (tests/bot/web/browser.py): one Chromium per module, the running stack."""

from tests.bot.web.browser import browser, running  # noqa: F401 - registered as fixtures here
