"""`midbot programs validate` as a linter: errors with file, line, field and reason (exit 1), warnings with
their lines (exit 0), and a template that could not be sent as written refused by `load` too."""

# ruff: noqa: F811 - the cli fixture imported from test_cli is requested by name
from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import cli  # noqa: F401  (the in-process CLI fixture)

from scheduler.lint import lint_programs

# Every line number the tests below name is a line of this file (1-based).
LINTED = """\
programs:
  - id: refill
    kind: refill_reminder
    trigger:
      run_out: {days_before: [5, 2]}
    templates:
      en: "Hi {first_name}, time to refill your Xeloda. Reply 1 to refill."
  - id: copay
    kind: copay_assistance
    trigger:
      run_out: {days_before: [7]}
    templates:
      en: "{site_name}: your next fill costs ${copay}. We can help lower it."
      es: "{site_name}: su próximo surtido cuesta ${copay}. Responda 1 si quiere ayuda, 2 si no."
  - id: welcome
    kind: new_start
    trigger:
      first_fill: {days_after: [1]}
    templates:
      en: "Welcome to {site_name}, {first_name}! Reply YES if we may name your medicine in texts, NO if not."
  - id: checkin
    kind: side_effect_checkin
    trigger:
      first_fill: {days_after: [7]}
    templates:
      en: "{site_name}: any side effects? Reply NO or tell us. {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone} {site_phone}"
"""


def _write(tmp_path: Path, text: str, name: str = "programs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unknown_placeholder_exits_1_with_file_line_field_and_placeholder(cli, tmp_path: Path) -> None:
    path = _write(tmp_path, LINTED.replace("Hi {first_name}", "Hi {first_nam}"))
    code, out, _err = cli("programs", "validate", str(path))
    assert code == 1
    assert out == [f"{path}:7: templates.en: unknown placeholder {{first_nam}}"]


def test_each_warning_names_its_line_and_alone_exits_0(cli, tmp_path: Path) -> None:
    path = _write(tmp_path, LINTED)
    code, out, _err = cli("programs", "validate", str(path))
    assert code == 0, out
    assert out == [
        f"{path}:7: warning: refill: templates.en: no reply choices (missing 2, 3): the refill reminder dialog "
        "expects 1 to refill, 2 if they still have enough, 3 to talk to a pharmacist",
        f"{path}:7: warning: refill: templates.en: does not name the pharmacy with {{site_name}}: midbot puts "
        '"Hi {first_name}, this is {site_name}." in front of it (unless the text spells the site\'s name exactly)',
        f"{path}:7: warning: refill: templates.en: names a drug: Xeloda (capecitabine); patients who have not "
        "agreed to detailed messages would read it: write {drug}, which names the medicine only with their "
        "consent",
        f"{path}:13: warning: copay: templates.en: no reply choices (missing 1, 2): the copay assistance dialog "
        "expects 1 for help with the cost, 2 for no thanks",
        f"{path}:20: warning: welcome: templates.en: no opt-out wording on what can be a patient's first text "
        '(e.g. "Reply STOP to opt out." / "Para cancelar, responda STOP."): midbot appends its own line, which '
        "makes the text longer",
        f"{path}:26: warning: checkin: templates.en: no opt-out wording on what can be a patient's first text "
        '(e.g. "Reply STOP to opt out." / "Para cancelar, responda STOP."): midbot appends its own line, which '
        "makes the text longer",
        f"{path}:26: warning: checkin: templates.en: 4 GSM-7 segments as sent, more than 3 "
        "(MIDBOT_MAX_TEMPLATE_SEGMENTS)",
        f"{path}: OK, 4 program(s): refill, copay, welcome, checkin",
    ]


def test_a_clean_file_has_no_findings_and_the_defaults_are_clean() -> None:
    fixed = (
        LINTED.replace(
            "Xeloda. Reply 1 to refill.", "{drug}. Reply 1 to refill, 2 if you have enough, 3 to talk."
        )
        .replace("Hi {first_name}, time", "{site_name}: {first_name}, time")
        .replace("We can help lower it.", "Reply 1 for help, 2 for no thanks.")
        .replace("NO if not.", "NO if not. Reply STOP to opt out.")
        .replace(" {site_phone}" * 28, " Reply STOP to opt out.")
    )
    result = lint_programs(fixed, segment_limit=3, site_languages={"en"})
    assert result.specs is not None and result.findings == []
    from scheduler.programs import default_yaml

    assert lint_programs(default_yaml(), segment_limit=3, site_languages={"en", "es"}).findings == []


def test_a_language_the_sites_patients_speak_is_a_warning_with_site(cli, tmp_path: Path) -> None:
    assert cli("sites", "add", "S1", "--name", "Clinic", "--phone", "+15005550006",
               "--time-zone", "America/Chicago")[0] == 0  # fmt: skip
    patients = _write(
        tmp_path,
        "patient_id,site_id,first_name,last_name,birth_date,phone,language,time_zone,sms_consent,"
        "detailed_consent\nX1,S1,Ana,Ruiz,1950-01-02,+13125550100,es,,true,false\n"
        "X2,S1,Bao,Tran,1950-01-02,+13125550101,en,,true,false\n",
        "patients.csv",
    )
    assert cli("import", "patients", str(patients), "--no-replan")[0] == 0
    path = _write(tmp_path, LINTED)
    code, out, _err = cli("programs", "validate", str(path), "--site", "S1")
    assert code == 0
    missing = [line for line in out if "no es wording" in line]
    # refill (line 6), welcome (19) and checkin (25) have English only; copay has both.
    assert [line.split(": warning: ")[0] for line in missing] == [f"{path}:6", f"{path}:19", f"{path}:25"]
    assert cli("programs", "validate", str(path), "--site", "NOPE")[0] == 1


@pytest.mark.parametrize(
    ("trigger", "wording", "reason"),
    [
        ('cron: "0 10 * * MON"', "Your copay is ${copay}. Reply 1 or 2.",
         "{copay} is not always known for a cron trigger (a prescription may have no fill yet, so no copay): "
         "those patients would get midbot's built-in wording"),
        ('cron: "0 10 * * MON"', "{days} days left. Reply 1 or 2.",
         "{days} is not always known for a cron trigger (a prescription may have no fill yet, so no run-out "
         "date): those patients would get midbot's built-in wording"),
        ("event: {name: received, after_days: 2}", "Copay ${copay}. Reply 1 or 2.",
         "{copay} is not always known for an event trigger (a prescription may have no fill yet, so no copay): "
         "those patients would get midbot's built-in wording"),
        ("run_out: {days_before: [7]}", "Copay ${copay:.2f}. Reply 1 or 2.",
         "{copay} cannot take a format ('!' or ':'); write {copay}"),
        ("run_out: {days_before: [7]}", "Copay {copay. Reply 1 or 2.",
         "a single { or } (write {{ or }} for a literal brace)"),
    ],
)  # fmt: skip
def test_wording_that_would_fall_back_to_the_built_in_is_an_error_and_load_refuses_it(
    cli,
    tmp_path: Path,
    trigger: str,
    wording: str,
    reason: str,
) -> None:
    assert cli("sites", "add", "S1", "--name", "Clinic", "--phone", "+15005550006",
               "--time-zone", "America/Chicago")[0] == 0  # fmt: skip
    text = (
        "programs:\n  - id: cost\n    kind: copay_assistance\n    trigger:\n"
        f"      {trigger}\n    templates:\n      en: '{wording}'\n"
    )
    path = _write(tmp_path, text)
    code, out, _err = cli("programs", "validate", str(path))
    assert (code, out) == (1, [f"{path}:7: templates.en: {reason}"])
    code, out, err = cli("programs", "load", str(path), "--site", "S1")
    assert code == 1 and out == [] and f"{path}:7: templates.en: " in err
    code, out, _err = cli("programs", "list", "--site", "S1")
    assert {line["source"] for line in out} == {"default"}  # nothing was loaded
