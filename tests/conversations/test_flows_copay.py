"""Copay assistance flow: the offer, routes by payer, when the patient hears back, cost concerns anywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conversations.types import FlowStart
from tests.conversations.flowkit import FRIDAY_NIGHT, RX, Dialog, body, facts, therapy

COPAY = FlowStart("copay_assistance", RX, {"copay": 250.0})


def test_offer_states_the_amount_and_two_choices() -> None:
    dialog = Dialog()
    text = body(dialog.start(COPAY))
    assert "Your next fill will cost $250." in text
    assert "Reply 1 if you want help with the cost, 2 for no thanks." in text
    assert dialog.state is not None and dialog.state.context["ask"] == "copay_offer"
    assert dialog.state.expires_at == dialog.now + timedelta(hours=48)


def test_offer_without_an_amount_uses_the_fill_history() -> None:
    text = body(Dialog().start(FlowStart("copay_assistance", RX)))
    assert "$250" in text
    generic = Dialog(facts(therapies=(therapy(next_copay=None),)))
    assert "We may be able to lower the cost of your medicine." in body(
        generic.start(FlowStart("copay_assistance", RX))
    )


@pytest.mark.parametrize(
    ("payer", "routes", "coupons"),
    [
        ("commercial", ["manufacturer_copay_program"], True),
        (
            "medicare_d",
            [
                "pan_foundation",
                "healthwell_foundation",
                "cancercare_copay_foundation",
                "lls_copay_assistance",
                "medicare_prescription_payment_plan",
            ],
            False,
        ),
        ("medicaid", ["coverage_check"], False),
    ],
)
def test_yes_opens_a_financial_task_with_the_payers_routes(
    payer: str, routes: list[str], coupons: bool
) -> None:
    dialog = Dialog(facts(therapies=(therapy(payer_type=payer),)))
    dialog.start(COPAY)
    done = dialog.say("1")
    task = done.tasks[0]
    assert (task.queue, task.kind, task.prescription_id) == ("financial", "copay_assistance", RX)
    assert task.detail["payer_type"] == payer
    assert task.detail["routes"] == routes
    assert task.detail["manufacturer_coupons_allowed"] is coupons
    if payer == "medicare_d":
        assert not any("manufacturer" in route for route in task.detail["routes"])
    assert [(s.kind, s.value["copay"]) for s in done.signals] == [("copay_barrier", 250.0)]
    assert done.next_state is None


def test_contact_time_is_the_next_business_day_in_the_site_zone() -> None:
    # Monday 10:00 Chicago + one business day of the navigator's time -> Tuesday.
    dialog = Dialog()
    dialog.start(COPAY)
    assert "Our team will contact you tomorrow about help with the cost." in body(dialog.say("1"))
    # Friday 21:00 Chicago -> Monday opening + 8 h = Monday's close: still the next business day.
    late = Dialog(now=FRIDAY_NIGHT)
    late.start(COPAY)
    assert "contact you on Monday" in body(late.say("yes"))
    # Friday 10:00 Chicago -> Monday.
    friday = Dialog(now=datetime(2026, 3, 6, 16, 0, tzinfo=UTC))
    friday.start(COPAY)
    assert "contact you on Monday" in body(friday.say("1"))


def test_no_thanks_records_the_decline() -> None:
    dialog = Dialog()
    dialog.start(COPAY)
    done = dialog.say("2")
    assert not done.tasks
    assert [s.kind for s in done.signals] == ["copay_help_declined"]
    assert "call us at +13125550100" in body(done)


def test_unanswered_offer_closes_quietly() -> None:
    dialog = Dialog()
    dialog.start(COPAY)
    done = dialog.timeout()
    assert not done.replies and not done.tasks and done.next_state is None


def test_cost_concern_as_free_text_opens_the_same_path() -> None:
    dialog = Dialog(facts(therapies=(therapy(payer_type="medicare_d"),)))
    done = dialog.say("I can't afford it")
    assert [(t.queue, t.detail["source"]) for t in done.tasks] == [("financial", "free_text")]
    assert "pan_foundation" in done.tasks[0].detail["routes"]
    assert [s.kind for s in done.signals] == ["copay_barrier"]
    assert "help with the cost" in body(done)


def test_cost_concern_inside_a_refill_reminder_keeps_the_reminder_open() -> None:
    dialog = Dialog()
    dialog.start(FlowStart("refill_reminder", RX))
    done = dialog.say("it is too expensive")
    assert [t.queue for t in done.tasks] == ["financial"]
    assert dialog.state is not None and dialog.state.flow == "refill_reminder"
    assert dialog.state.state == "awaiting_choice"


def test_spanish_offer_and_yes() -> None:
    dialog = Dialog(facts("es"))
    text = body(dialog.start(COPAY))
    assert "Su próximo surtido costará $250." in text
    assert "Responda 1 si quiere ayuda con el costo, 2 si no." in text
    done = dialog.say("sí")
    assert done.tasks[0].queue == "financial"
    assert "Nuestro equipo le contactará mañana" in body(done)
