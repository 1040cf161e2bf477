"""The examples of docs/api.md, replayed against the real app in order: each answer is exactly the documented one."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.bot.support import Seeded, bearer

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"
_BLOCK = re.compile(r"```http\n(.*?)```", re.DOTALL)
_STATUS = re.compile(r"^HTTP (\d{3})$", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    method: str
    path: str
    token: bool
    body: Any
    status: int
    answer: Any


def examples() -> list[Example]:
    found = []
    for block in _BLOCK.findall(DOC.read_text(encoding="utf-8")):
        request, status, answer = _STATUS.split(block, maxsplit=1)
        line, _, body = request.partition("\n")
        method, path, *rest = line.split(" ", 2)
        found.append(
            Example(method, path, rest != ["(no token)"], json.loads(body) if body.strip() else None,
                    int(status), json.loads(answer))
        )  # fmt: skip
    return found


def test_the_doc_has_its_examples() -> None:
    found = examples()
    assert len(found) >= 12
    assert {e.status for e in found} >= {200, 400, 401, 404, 405, 409, 422}


async def test_every_documented_answer_is_what_the_api_answers(api: tuple[TestClient, Seeded]) -> None:
    client, seeded = api
    for example in examples():
        headers = bearer(seeded) if example.token else {}
        response = await client.request(example.method, example.path, json=example.body, headers=headers)
        answer = await response.json(content_type=None)
        assert (response.status, answer) == (example.status, example.answer), f"{example.method} {example.path}"
