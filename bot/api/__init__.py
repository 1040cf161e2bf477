"""REST API under /api/v1/."""

from bot.api.routes import ApiCall, ApiRoute, QueryParam, add_api_route, setup_api

__all__ = ["ApiCall", "ApiRoute", "QueryParam", "add_api_route", "setup_api"]
