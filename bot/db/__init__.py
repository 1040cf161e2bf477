"""The one shared store: models, engine, migrations."""

from bot.db.base import Base, UTCDateTime
from bot.db.session import make_engine, make_sessionmaker

__all__ = ["Base", "UTCDateTime", "make_engine", "make_sessionmaker"]
