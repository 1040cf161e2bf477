"""Property-based: any incoming-message webhook, signed, through the real app and the simulator over loopback, is
answered 200 (stored exactly once, cleaned as specified) or 400 naming the field; never a 500, never lost, and a
replay stores nothing twice. Bounded (derandomized, few examples) so it stays a few seconds."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.db.models import Message
from integrations.twilio.signature import sign
from tests.e2e.conftest import AUTH_TOKEN, SITE_PHONE, Stack, add_patient
from tests.live import StackThread

_SIDS = itertools.count()


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[StackThread, Stack]]:
    with StackThread() as runner:
        stack = runner.start()
        runner.run(add_patient(stack, "P1", "+13125550171"))
        yield runner, stack


_text = st.text(max_size=40)
_numbers = st.one_of(st.integers(-5, 10**30).map(str), _text, st.sampled_from(["", "1", "0", " 3 ", "٣"]))
_phone = st.one_of(st.sampled_from(["+13125550171", "+13125550199", "+447700900123", "", "\x00"]), _text)
_form = st.fixed_dictionaries(
    {
        "From": _phone,
        "To": st.one_of(st.just(SITE_PHONE), _text),
        "Body": st.text(max_size=300) | st.just("stop") | st.just("a\x00b"),
        "NumSegments": _numbers,
        "NumMedia": _numbers,
    },
    optional={"MediaUrl0": _text, "SmsSid": _text, "Extra": _text},
)


def _sid(bad: str | None) -> str:
    return bad if bad is not None else f"SM{next(_SIDS):032d}"


async def _post(stack: Stack, form: dict[str, str]) -> tuple[int, dict[str, Any] | None]:
    url = f"{stack.base_url}/twilio/inbound"
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": sign(AUTH_TOKEN, url, form)}  # fmt: skip
    async with stack.http.post(url, data=urlencode(form), headers=headers) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def _stored(stack: Stack, sids: list[str]) -> dict[str, list[Message]]:
    async with stack.sessionmaker() as session:
        rows = await session.scalars(select(Message).where(Message.provider_sid.in_(sids)))
        found: dict[str, list[Message]] = {}
        for row in rows:
            found.setdefault(row.provider_sid or "", []).append(row)
        return found


async def _example(stack: Stack, forms: list[dict[str, str]]) -> None:
    answers = await asyncio.gather(*(_post(stack, form) for form in forms))
    await stack.settle()
    for (status, body), form in zip(answers, forms, strict=True):
        assert status in (200, 400), (status, body, form)
        if status == 400:
            assert body is not None and body["field"] in ("MessageSid", "From"), body
    accepted: dict[str, list[dict[str, str]]] = {}  # by the id Twilio gave (MessageSid, else SmsSid)
    for (status, _), form in zip(answers, forms, strict=True):
        if status == 200:
            accepted.setdefault(form["MessageSid"] or form.get("SmsSid", ""), []).append(form)
    stored = await _stored(stack, list(accepted))
    for sid, sent in accepted.items():
        [row] = stored[sid]  # stored exactly once, however often it came
        assert row.body in {form["Body"].replace("\x00", "")[:10_000] for form in sent}
        assert row.from_number in {form["From"].replace("\x00", "")[:40] for form in sent} - {""}
        assert 1 <= row.segments <= 100 and 0 <= row.num_media <= 10
        assert row.processed_at is not None  # handled: a reply, a dialog step or a task
    replays = await asyncio.gather(*(_post(stack, sent[0]) for sent in accepted.values()))
    assert all(status == 200 for status, _ in replays)
    again = await _stored(stack, list(accepted))
    assert all(len(rows) == 1 for rows in again.values()) and len(again) == len(accepted)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    forms=st.lists(_form, min_size=1, max_size=6),
    bad_sids=st.lists(
        st.one_of(st.none(), st.none(), _text, st.just("SM" + "x" * 80)), min_size=6, max_size=6
    ),
)
def test_any_signed_webhook_is_stored_once_or_refused_never_500(
    live: tuple[StackThread, Stack], forms: list[dict[str, str]], bad_sids: list[str | None]
) -> None:
    runner, stack = live
    posted = [{**form, "MessageSid": _sid(bad)} for form, bad in zip(forms, bad_sids, strict=False)]
    runner.run(_example(stack, posted))
