"""REST API under /api/v1/."""

from bot.api.base import Answer, ApiCall, ApiRoute
from bot.api.routes import add_api_route, setup_api

__all__ = ["Answer", "ApiCall", "ApiRoute", "add_api_route", "setup_api"]
