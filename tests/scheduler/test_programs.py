"""Programs YAML: validation with line numbers, the shipped defaults, digests and per-site storage."""

from __future__ import annotations

from pathlib import Path

import pytest
from sched_helpers import add_site
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Program
from scheduler.programs import (
    ProgramFileError,
    active_programs,
    default_programs,
    load_default_programs,
    load_programs_file,
    parse_programs,
    replace_site_programs,
    spec_digest,
)

GOOD = """\
programs:
  - id: refill-5-and-2-days
    kind: refill_reminder
    trigger:
      run_out: {days_before: [5, 2]}
    when: {drugs: [capecitabine], copay_at_least: 100}
    send_at: "10:00"
    expire_after_hours: 24
    templates: {en: "Time to refill", es: "Hora de surtir"}
  - id: weekly
    kind: side_effect_checkin
    trigger:
      cron: "0 10 * * MON"
"""


def errors(text: str) -> list[str]:
    with pytest.raises(ProgramFileError) as info:
        parse_programs(text)
    return [e.render("f.yaml") for e in info.value.errors]


def test_a_valid_file_parses_with_defaults() -> None:
    specs = parse_programs(GOOD)
    assert [s.id for s in specs] == ["refill-5-and-2-days", "weekly"]
    assert specs[0].trigger.run_out is not None and specs[0].trigger.run_out.days_before == [5, 2]
    assert specs[0].when.copay_at_least == 100
    assert (
        specs[1].send_at == "10:00" and specs[1].expire_after_hours == 24 and specs[1].trigger.type == "cron"
    )


def test_every_error_is_reported_with_its_line_and_field() -> None:
    text = """\
programs:
  - id: refill
    kind: no_such_kind
    trigger:
      run_out: {days_before: [5, -1]}
    send_at: "25:00"
  - id: weekly
    kind: new_start
    trigger: {cron: "0 99 * * *"}
    when:
      payer_types: [commercial, bogus]
      colour: blue
"""
    assert errors(text) == [
        "f.yaml:3: programs[0].kind: Input should be 'refill_reminder', 'side_effect_checkin', 'copay_assistance', "
        "'new_start' or 'abandonment_recovery'",
        "f.yaml:5: programs[0].trigger.run_out.days_before[1]: Input should be greater than or equal to 0",
        "f.yaml:6: programs[0].send_at: hour must be in 0..23",
        "f.yaml:9: programs[1].trigger.cron: hour: '99': the last value (99) is higher than the maximum value (23)",
        "f.yaml:11: programs[1].when.payer_types[1]: Input should be 'commercial', 'medicare_d', 'medicaid', 'cash' "
        "or 'other'",
        "f.yaml:12: programs[1].when.colour: Extra inputs are not permitted",
    ]


def test_unreadable_files_are_reported_not_raised(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("programs:\n  [] # café".encode("latin-1"))
    with pytest.raises(ProgramFileError) as caught:
        load_programs_file(latin1)
    assert [(e.line, e.field, e.reason) for e in caught.value.errors] == [
        (2, "file", "not UTF-8 (byte 0xe9); save the file as UTF-8")
    ]
    with pytest.raises(ProgramFileError) as caught:
        load_programs_file(tmp_path / "missing.yaml")
    assert [(e.line, e.field) for e in caught.value.errors] == [(0, "file")]
    assert caught.value.errors[0].reason.startswith("cannot read: ")
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfprograms: []\n")
    assert load_programs_file(bom) == []


def _billion_laughs() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join([*lines, "programs: *a8", ""])


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("programs: " + "[" * 100_000 + "]" * 100_000, 1, "nested deeper than 32 levels"),
        ("programs:\n" + "".join("  " * n + "- \n" for n in range(1, 40)), 0, "nested deeper than 32 levels"),
        (_billion_laughs(), 1, "more than 100000 values once its aliases are expanded"),
        ("programs: []\n# nul \x00\n", 2, "character #x0000 is not allowed in YAML"),
    ],
    ids=["deep-flow", "deep-block", "billion-laughs", "nul"],
)
def test_hostile_yaml_is_one_named_error_on_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, reason: str
) -> None:
    from bot.cli import main

    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["programs", "validate", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].endswith(f": yaml: {reason}"), out
    if line:
        assert out[0] == f"{path}:{line}: yaml: {reason}"


def test_trigger_needs_exactly_one_kind_and_required_fields_point_at_their_parent() -> None:
    text = (
        'programs:\n  - id: a\n    kind: new_start\n    trigger:\n      cron: "0 10 * * *"\n'
        "      event: {name: ready}\n  - kind: new_start\n    trigger: {event: {name: ready}}\n"
    )
    found = errors(text)
    assert (
        found[0]
        == "f.yaml:4: programs[0].trigger: needs exactly one of run_out, first_fill, cron, event (got 2)"
    )
    assert found[1] == "f.yaml:7: programs[1].id: Field required"


def test_duplicate_ids_yaml_syntax_and_shape() -> None:
    dup = (
        "programs:\n  - {id: a, kind: new_start, trigger: {event: {name: ready}}}\n"
        "  - {id: a, kind: new_start, trigger: {event: {name: shipped}}}\n"
    )
    assert errors(dup) == ["f.yaml:3: programs[1].id: duplicate id 'a'"]
    assert errors("programs:\n  - id: [unclosed\n")[0].startswith("f.yaml:3: yaml: ")
    assert errors("- just a list\n") == [
        "f.yaml:1: programs: the file must hold a mapping with a 'programs' list"
    ]
    assert errors(
        "programs:\n  - id: x\n    kind: new_start\n    send_at: '06:00'\n    trigger: {event: {name: ready}}\n"
    ) == ["f.yaml:4: programs[0].send_at: must be between 08:00 and 21:00 (the legal sending window)"]


def test_the_default_set_covers_the_oncology_programs() -> None:
    specs = {s.id: s for s in default_programs()}
    assert specs["refill-reminder"].trigger.run_out.days_before == [5, 2]  # type: ignore[union-attr]
    checkin = specs["side-effect-checkin"].trigger.first_fill
    assert checkin is not None and checkin.days_after == [3, 7, 14] and checkin.then_every == 30
    assert specs["copay-assistance"].when.copay_at_least == 100
    assert specs["abandonment-recovery"].trigger.event.name == "not_picked_up"  # type: ignore[union-attr]
    assert {s.kind for s in specs.values()} == {
        "refill_reminder",
        "side_effect_checkin",
        "copay_assistance",
        "new_start",
        "abandonment_recovery",
    }


def test_digest_changes_only_with_the_spec() -> None:
    a, b = parse_programs(GOOD)
    again = parse_programs(GOOD)[0]
    assert spec_digest(a) == spec_digest(again) != spec_digest(b)
    edited = parse_programs(GOOD.replace("[5, 2]", "[5, 3]"))[0]
    assert spec_digest(edited) != spec_digest(a)


async def test_replace_site_programs_adds_updates_removes_and_is_a_no_op_when_unchanged(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    async with sm.begin() as session:
        await add_site(session)
        first = await replace_site_programs(session, "S1", parse_programs(GOOD))
    assert (
        first.added == ["refill-5-and-2-days", "weekly"] and first.was_default and len(first.changed_pks) == 2
    )
    async with sm.begin() as session:
        same = await replace_site_programs(session, "S1", parse_programs(GOOD))
    assert (
        same.unchanged == ["refill-5-and-2-days", "weekly"] and not same.changed_pks and not same.was_default
    )
    async with sm.begin() as session:
        edited = await replace_site_programs(
            session, "S1", parse_programs(GOOD.replace("[5, 2]", "[5, 3]"))[:1]
        )
        rows = {p.program_id: p for p in await session.scalars(select(Program))}
    assert edited.updated == ["refill-5-and-2-days"] and edited.removed == ["weekly"]
    assert edited.changed_pks == {rows["refill-5-and-2-days"].id, rows["weekly"].id}
    assert rows["weekly"].active is False and rows["refill-5-and-2-days"].spec["trigger"]["run_out"][
        "days_before"
    ] == [5, 3]
    async with sm() as session:
        active = await active_programs(session, ["S1"])
    assert [p.spec.id for p in active["S1"]] == ["refill-5-and-2-days"]


async def test_a_site_without_programs_uses_the_defaults_and_load_default_programs_stores_them(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    async with sm.begin() as session:
        await add_site(session, "S1")
        await add_site(session, "S2")
        await load_default_programs(session, "S2")
        again = await load_default_programs(session, "S2")
    assert len(again.unchanged) == len(default_programs())
    async with sm() as session:
        active = await active_programs(session, ["S1", "S2"])
    assert all(p.pk is None for p in active["S1"]) and all(p.pk is not None for p in active["S2"])
    assert [p.spec.id for p in active["S1"]] == [p.spec.id for p in active["S2"]]


def test_validate_flags_templates_longer_than_the_segment_limit(tmp_path) -> None:
    import subprocess
    import sys

    path = tmp_path / "long.yaml"
    choices = "Reply 1 to refill, 2 if you still have enough, 3 to talk to a pharmacist."
    long_text = "Hello {first_name}, " + "this reminder keeps going and going. " * 20 + choices
    path.write_text(
        "programs:\n  - id: wordy\n    kind: refill_reminder\n    trigger:\n      run_out: {days_before: [5]}\n"
        f'    templates:\n      en: "{long_text}"\n      es: "Hola {{first_name}}, responda 1, 2 o 3."\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "programs", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if "segments" in line]
    assert warnings == [
        f"{path}:7: warning: wordy: templates.en: 6 GSM-7 segments as sent, more than 3 "
        "(MIDBOT_MAX_TEMPLATE_SEGMENTS)"
    ]


def test_an_unknown_placeholder_is_an_error_with_its_line() -> None:
    from scheduler.programs import ProgramFileError, parse_programs

    text = (
        "programs:\n  - id: r\n    kind: refill_reminder\n    trigger:\n      run_out: {days_before: [5]}\n"
        "    templates:\n      en: 'Hi {first_nam}, time to refill. Reply 1.'\n      es: 'Hola {first_name}.'\n"
    )
    with pytest.raises(ProgramFileError) as info:
        parse_programs(text)
    assert [(e.line, e.field, e.reason) for e in info.value.errors] == [
        (7, "templates.en", "unknown placeholder {first_nam}")
    ]
