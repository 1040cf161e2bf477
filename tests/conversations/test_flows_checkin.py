"""Side-effect check-in flow: symptoms, 0-4 severity, missed doses, red flags, timeouts, Spanish."""

from __future__ import annotations

from datetime import timedelta

from conversations.types import Classification, FlowStart
from tests.conversations.flowkit import RX, Dialog, body, facts, site, therapy

CHECKIN = FlowStart("side_effect_checkin", RX)


def test_opening_asks_about_the_drugs_symptoms_without_naming_it() -> None:
    dialog = Dialog()
    text = body(dialog.start(CHECKIN))
    assert "Any side effects since your last fill? Reply NO or tell us what you feel" in text
    assert "diarrhea, sore or red hands or feet or nausea" in text  # capecitabine's list
    assert "capecitabine" not in text.lower()
    assert dialog.state is not None and dialog.state.context["ask"] == "checkin_open"
    assert dialog.state.expires_at == dialog.now + timedelta(hours=24)


def test_opening_names_the_drug_with_detailed_consent_and_uses_its_list() -> None:
    patient = facts(detailed=True, therapies=(therapy(drug="Zytiga 250 mg"),))
    text = body(Dialog(patient).start(CHECKIN))
    assert "Any side effects from Zytiga 250 mg" in text
    assert "swelling, dizziness or hot flashes" in text


def test_no_side_effects_then_no_missed_doses() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    asked = dialog.say("no")
    assert "How many doses did you miss in the last 7 days?" in body(asked)
    assert dialog.state is not None and dialog.state.context["ask"] == "missed_doses"
    done = dialog.say("0")
    assert not done.tasks and not done.signals
    assert done.next_state is None


def test_symptom_without_severity_asks_severity_then_mild_gives_self_care() -> None:
    patient = facts(
        site=site(self_care={"diarrhea": {"en": "Drink plenty of water. Call us if it gets worse."}})
    )
    dialog = Dialog(patient)
    dialog.start(CHECKIN)
    asked = dialog.say("diarrhea")
    assert "How bad is it at its worst? Reply 0 none, 1 mild, 2 moderate, 3 severe, 4 very severe." in body(
        asked
    )
    assert dialog.state is not None and dialog.state.context["ask"] == "checkin_severity"
    mild = dialog.say("1")
    assert not mild.tasks
    assert [(s.kind, s.value["symptom"], s.value["severity"], s.value["grade"]) for s in mild.signals] == [
        ("side_effect", "diarrhea", "mild", 1)
    ]
    assert "Drink plenty of water." in body(mild)
    assert "How many doses did you miss" in body(mild)
    done = dialog.say("3")
    assert [(s.kind, s.value["count"]) for s in done.signals] == [("missed_dose", 3)]
    assert [(t.queue, t.kind) for t in done.tasks] == [("clinical", "missed_dose")]
    assert done.next_state is None


def test_mild_without_a_site_note_gets_the_generic_advice() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    dialog.say("nausea")
    assert "Call us at +13125550100 if it gets worse." in body(dialog.say("1"))


def test_one_missed_dose_is_a_signal_without_a_task() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    dialog.say("no")
    done = dialog.say("1")
    assert [(s.kind, s.value["count"]) for s in done.signals] == [("missed_dose", 1)]
    assert not done.tasks


def test_severity_in_the_first_reply_skips_the_question_and_severe_is_urgent() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    decision = dialog.say("severe diarrhea")
    assert [(t.queue, t.priority) for t in decision.tasks] == [("urgent_clinical", 1)]
    assert "Please call us now at +13125550100" in body(decision)
    assert decision.signals[0].value == {
        "symptom": "diarrhea",
        "severity": "severe",
        "grade": 3,
        "source": "checkin",
    }
    assert decision.next_state is None  # no more questions: the patient is calling the clinic


def test_moderate_opens_a_same_day_clinical_task_and_continues() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    dialog.say("rash")
    decision = dialog.say("2")
    assert [(t.queue, t.priority, t.kind) for t in decision.tasks] == [("clinical", 2, "side_effect")]
    assert "A pharmacist will contact you today about this." in body(decision)
    assert dialog.state is not None and dialog.state.state == "awaiting_missed"


def test_very_severe_in_words() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    dialog.say("nausea")
    decision = dialog.say("very severe")
    assert decision.tasks[0].priority == 1
    assert decision.signals[0].value["grade"] == 4


def test_fever_is_a_red_flag_even_when_mild() -> None:
    def as_side_effect(text: str, context: str | None = None) -> Classification:
        # the real classifier calls fever "emergency"; a side effect labelled mild must still be urgent
        return Classification(text=text, intent="side_effect", severity="mild", symptoms=("fever",))

    dialog = Dialog(classifier=as_side_effect)
    dialog.start(CHECKIN)
    decision = dialog.say("mild fever")
    assert decision.tasks[0].queue == "urgent_clinical"
    assert decision.tasks[0].detail["red_flags"] == ["fever"]


def test_no_answer_at_the_first_question_closes_quietly() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    done = dialog.timeout()
    assert not done.replies and not done.tasks
    assert [s.kind for s in done.signals] == ["checkin_unanswered"]
    assert done.next_state is None


def test_a_symptom_left_ungraded_still_reaches_a_pharmacist() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    dialog.say("diarrhea")
    done = dialog.timeout()
    assert not done.replies
    assert [(t.queue, t.priority) for t in done.tasks] == [("clinical", 2)]
    assert done.signals[0].value["severity"] is None
    assert done.next_state is None


def test_unexpected_severity_answer_is_asked_again() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    dialog.say("diarrhea")
    again = dialog.say("banana")
    assert "How bad is it" in body(again) and not again.tasks
    handed = dialog.say("potato")
    assert handed.tasks[0].kind == "unrecognized_reply"


def test_yes_without_a_symptom_asks_what_they_feel() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    asked = dialog.say("yes")
    assert "What do you feel?" in body(asked)
    assert dialog.state is not None and dialog.state.state == "awaiting_symptoms"
    assert "How bad is it" in body(dialog.say("diarrhea"))


def test_still_vague_after_asking_what_goes_on_to_severity() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    dialog.say("yes")
    assert "How bad is it" in body(dialog.say("yes"))


def test_missed_doses_stated_with_no_symptoms() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    done = dialog.say("no, but I missed 2 doses")
    assert [(s.kind, s.value["count"]) for s in done.signals] == [("missed_dose", 2)]
    assert done.tasks[0].kind == "missed_dose"
    assert done.next_state is None


def test_second_intent_symptom_and_cost() -> None:
    dialog = Dialog()
    dialog.start(CHECKIN)
    decision = dialog.say("mild nausea and I can't afford my medicine")
    queues = sorted(t.queue for t in decision.tasks)
    assert queues == ["financial"]
    assert {s.kind for s in decision.signals} == {"side_effect", "copay_barrier"}
    assert "How many doses" in body(decision)  # the check-in goes on


def test_spanish_check_in() -> None:
    dialog = Dialog(facts("es"))
    text = body(dialog.start(CHECKIN))
    assert "¿Algún efecto secundario desde su último surtido, como diarrea" in text
    asked = dialog.say("diarrea")
    assert "¿Qué tan fuerte es en su peor momento?" in body(asked)
    urgent = dialog.say("3")
    assert "Llámenos ahora al +13125550100" in body(urgent)
    assert urgent.tasks[0].priority == 1


def test_spanish_no_then_count() -> None:
    dialog = Dialog(facts("es"))
    dialog.start(CHECKIN)
    asked = dialog.say("no")
    assert "¿Cuántas dosis olvidó en los últimos 7 días?" in body(asked)
    assert dialog.say("0").next_state is None
