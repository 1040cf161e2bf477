"""Developer tool: write a new Alembic revision by comparing the models with a freshly migrated database.

Usage: python -m bot.db.revision "what changed"
       python -m bot.db.revision --initial   (before the first release: rewrite 0001 from the models)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy.engine import Connection

from bot.db.migrate import alembic_config, upgrade
from bot.db.session import make_engine


def _revise(connection: Connection, message: str, rev_id: str | None) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)


async def _main(message: str, initial: bool) -> None:
    if initial:
        versions = Path(alembic_config().get_main_option("script_location") or "") / "versions"
        for old in versions.glob("*.py"):
            old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp}/rev.db")
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.run_sync(_revise, message, "0001" if initial else None)
        await engine.dispose()


if __name__ == "__main__":
    first = sys.argv[1] if len(sys.argv) > 1 else "change"
    asyncio.run(_main("initial schema" if first == "--initial" else first, first == "--initial"))
