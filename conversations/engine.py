"""The dialog engine: start an outreach, handle one inbound text, handle a step's timeout. Pure."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from conversations.ensemble import CLARIFY_BELOW
from conversations.flows import free_text, refill
from conversations.flows.common import Step, ack_sentence, lang, med_values, site_values, therapy_for
from conversations.flows.dispatch import FLOWS, FlowSpec
from conversations.flows.safety import guard
from conversations.flows.triage import emergency
from conversations.templates import fill_custom, render
from conversations.types import (
    Classification,
    ConversationState,
    Decision,
    FlowStart,
    PatientFacts,
    Reply,
    TaskSpec,
)

__all__ = ["Classifier", "handle", "on_timeout", "start"]

_LOGGER = logging.getLogger(__name__)

Classifier = Callable[[str, str | None], Classification]
MAX_REASKS = 1  # one re-ask of an unexpected answer; the second one goes to a person
# Labels that mean something on their own even when they do not answer the open question.
_MEANINGFUL: tuple[str, ...] = (*free_text.SECONDARY, "wrong_number", "opt_out", "help")
# Labels that are an answer (even if an incomplete one) to the question of a classifier context.
_ANSWERS: dict[str | None, frozenset[str]] = {
    "refill_reminder": frozenset({"call_request", "refill_request"}),
    "checkin_open": frozenset({"side_effect", "missed_dose"}),
    "checkin_severity": frozenset({"side_effect"}),
    "missed_doses": frozenset({"missed_dose"}),
    "copay_offer": frozenset({"cost_concern"}),
}


# Answers that move a dialog on (refill it, cancel the reminders): never taken on a guess (ensemble.CLARIFY_BELOW).
_GUESSABLE = frozenset({"confirm", "decline"})
_THANKS = ("Thank you! ", "Thank you. ", "¡Gracias! ", "Gracias. ")
_THANKS_ALONE = frozenset({"Thank you", "Gracias", "¡Gracias"})
_THANKS_START = ("Thank you", "Gracias", "¡Gracias")


def _default_classifier() -> Classifier:
    from conversations.classify import classify  # imported late: the classifier loads its lexicons

    return classify


def start(flows: Sequence[FlowStart], facts: PatientFacts, now: datetime) -> Decision:
    """The first message of an outreach: one flow, or several bundled into one text.

    The first flow's question is asked; the others wait in the state's context and are asked, in the
    same reply, when the first one finishes. Every outreach names the pharmacy; the first contact (a
    new start, or ``params["first_contact"]``) ends with how to opt out.

    Args:
        flows: the flows to start, in order (at least one).
        facts: the patient.
        now: the current time (aware).

    Returns:
        A decision with exactly one Reply (kind "outreach") and ``next_state`` set.

    Raises:
        ValueError: no flows, or a flow name that is not an outreach flow.
    """
    if not flows:
        raise ValueError("start needs at least one flow")
    specs = [_startable(f.flow) for f in flows]
    first = flows[0]
    begun = specs[0].begin(first, facts, now)
    language = lang(facts)
    body = _custom_opening(first, facts, now) or " ".join(begun.texts)
    if facts.site.name not in body:
        body = f"{_greeting(facts)} {body}"
    if len(flows) > 1:
        body = f"{body} {render('bundle_more', language)}"
    if _first_contact(flows) and "STOP" not in body:
        body = f"{body} {render('stop_line', language)}"
    queue = [_entry(f) for f in flows[1:]]
    state = begun.next_state
    if state is None:  # every startable flow opens a step; guard anyway so the dialog is never lost
        raise ValueError(f"flow {first.flow!r} did not open a dialog step")
    _LOGGER.info("outreach for patient %s: %s", facts.patient_id, [f.flow for f in flows])
    return Decision(
        replies=(Reply(body, "outreach"),),
        tasks=begun.tasks,
        signals=begun.signals,
        next_state=_attach(state, queue, _entry(first)),
    )


def handle(
    state: ConversationState | None,
    text: str,
    facts: PatientFacts,
    now: datetime,
    classifier: Classifier | None = None,
) -> Decision:
    """One inbound text (consent keywords were handled before): a reply, tasks, signals, next state.

    Args:
        state: the open dialog step, or None when no dialog is open.
        text: the patient's text.
        facts: the patient.
        now: the current time (aware).
        classifier: ``classify(text, context)``; the real classifier by default.

    Returns:
        The decision; its ``classification`` is what the text was understood as.
    """
    classify = classifier or _default_classifier()
    spec = FLOWS.get(state.flow) if state is not None else None
    if state is not None and spec is None:
        _LOGGER.warning(
            "patient %s had an unknown flow %r open; treated as no dialog", facts.patient_id, state.flow
        )
        state = None
    ask = state.context.get("ask") if state else None
    cls = guard(classify(text, ask), ask)  # dialog-level safety whatever classifier is plugged in
    if "emergency" in cls.labels:
        return _decision(emergency(cls, facts, state), cls)
    if state is None or spec is None:
        return _decision(free_text.respond(cls, facts, now), cls)
    if _unsure_answer(cls):
        return _decision(_unusable(state, spec, _without_answer(cls), facts, now), cls)
    result = spec.step(state, cls, facts, now)
    if result is None:
        return _decision(_unusable(state, spec, cls, facts, now), cls)
    return _decision(_after_step(state, result, cls, facts, now), cls)


def on_timeout(state: ConversationState, facts: PatientFacts, now: datetime) -> Decision:
    """The open step's ``expires_at`` passed: follow up, hand over to a person, or close.

    Queued (bundled) flows are dropped with the dialog: a patient who did not answer one question is
    not sent the next one.
    """
    spec = FLOWS.get(state.flow)
    if spec is None:
        _LOGGER.warning("timeout of unknown flow %r for patient %s; closed", state.flow, facts.patient_id)
        return Decision()
    result = spec.timeout(state, facts, now)
    kind = "followup" if result.texts else result.kind
    return _decision(replace(result, kind=kind), None)


# -- helpers -------------------------------------------------------------------------------------------


def _unsure_answer(cls: Classification) -> bool:
    """A yes or a no the classifier is not sure of: the dialog asks again or hands it to a person."""
    return bool(set(cls.labels) & _GUESSABLE) and cls.confidence < CLARIFY_BELOW


def _without_answer(cls: Classification) -> Classification:
    """The classification with its yes/no removed: what is left (a question, a symptom) is still acted on."""
    rest = tuple(label for label in cls.labels if label not in _GUESSABLE)
    return replace(cls, intent=rest[0] if rest else "unknown", also=rest[1:])


def _startable(name: str) -> FlowSpec:
    spec = FLOWS.get(name)
    if spec is None or not spec.startable:
        raise ValueError(f"unknown outreach flow {name!r}")
    return spec


def _entry(flow: FlowStart) -> dict[str, Any]:
    """A JSON-safe record of a flow start, kept in the state to ask it later."""
    return {"flow": flow.flow, "prescription_id": flow.prescription_id, "params": dict(flow.params)}


def _from_entry(entry: dict[str, Any]) -> FlowStart:
    return FlowStart(
        flow=entry["flow"], prescription_id=entry.get("prescription_id"), params=entry.get("params") or {}
    )


def _attach(
    state: ConversationState, queue: list[dict[str, Any]], origin: dict[str, Any] | None
) -> ConversationState:
    """The state with the engine's bookkeeping (queued flows, the flow's own start) in its context."""
    context = {**state.context, "queue": queue}
    if origin is not None:
        context["origin"] = origin
    return replace(state, context=context)


def _greeting(facts: PatientFacts) -> str:
    key = "greet" if facts.first_name else "greet_anon"
    return render(key, lang(facts), **site_values(facts))


def _first_contact(flows: Sequence[FlowStart]) -> bool:
    return any(f.flow == "new_start" or f.params.get("first_contact") is True for f in flows)


def _custom_opening(flow: FlowStart, facts: PatientFacts, now: datetime) -> str | None:
    """The clinic's wording for this flow in the patient's language, if it configured one that formats."""
    wording = (flow.template or {}).get(lang(facts))
    if not wording:
        return None
    values: dict[str, object] = {
        **site_values(facts),
        "drug": med_values(facts, therapy_for(facts, flow.prescription_id))["drug"],
    }
    days = flow.params.get("days")
    if not isinstance(days, int) or isinstance(days, bool):
        days = refill.days_left_until_run_out(flow, facts, now)
    if days is not None:
        values["days"] = days
    copay = flow.params.get("copay")
    if isinstance(copay, int | float) and not isinstance(copay, bool):
        values["copay"] = f"{copay:,.0f}" if float(copay).is_integer() else f"{copay:,.2f}"
    return fill_custom(wording, values)


def _after_step(
    state: ConversationState, result: Step, cls: Classification, facts: PatientFacts, now: datetime
) -> Step:
    """Honour second intents, then continue with the next queued flow when this one is over."""
    queue: list[dict[str, Any]] = list(state.context.get("queue") or [])
    origin = state.context.get("origin")
    may_ask = result.next_state is None and not queue
    extra = free_text.secondary(cls, result.used, facts, now, state.prescription_id, may_ask)
    combined = result.plus(extra)
    if result.next_state is not None:  # keep the open question last in the text
        combined = replace(combined, texts=extra.texts + result.texts, next_state=result.next_state)
    if combined.next_state is not None:
        same_flow = combined.next_state.flow == state.flow
        return replace(
            combined, next_state=_attach(combined.next_state, queue, origin if same_flow else None)
        )
    if not queue or any(task.priority == 1 for task in combined.tasks):
        return combined  # nothing queued, or the patient must call the clinic now: no more questions
    return _continue(combined, queue, facts, now)


def _continue(done: Step, queue: list[dict[str, Any]], facts: PatientFacts, now: datetime) -> Step:
    """Ask the next queued flow's question in the same reply."""
    entry, rest = queue[0], queue[1:]
    spec = FLOWS.get(entry.get("flow", ""))
    if spec is None or not spec.startable:
        _LOGGER.warning(
            "queued flow %r for patient %s is unknown; skipped", entry.get("flow"), facts.patient_id
        )
        return _continue(done, rest, facts, now) if rest else done
    begun = spec.begin(_from_entry(entry), facts, now)
    following = Step(texts=(render("bundle_next", lang(facts)),)).plus(begun)
    result = done.plus(following)
    if begun.next_state is None:
        return _continue(result, rest, facts, now) if rest else result
    return replace(result, next_state=_attach(begun.next_state, rest, entry))


def _unusable(
    state: ConversationState, spec: FlowSpec, cls: Classification, facts: PatientFacts, now: datetime
) -> Step:
    """An answer the open step cannot use: act on what it does say, else re-ask once, then a person."""
    answers = _ANSWERS.get(state.context.get("ask"), frozenset())
    meaningful = [label for label in cls.labels if label in _MEANINGFUL and label not in answers]
    question = spec.question(state, facts)
    if question is None:  # nothing to re-ask (e.g. after a plain welcome): it is free text
        return free_text.respond(cls, facts, now, state.prescription_id)
    if meaningful:
        return _side_path(state, spec, cls, meaningful[0], facts, now)
    retries = int(state.context.get("retries") or 0)
    if retries < MAX_REASKS:
        again = replace(state, context={**state.context, "retries": retries + 1})
        return Step(texts=(render("reask_prefix", lang(facts)), question), next_state=again)
    task = TaskSpec(
        queue="general",
        kind="unrecognized_reply",
        title="Patient reply not understood",
        priority=3,
        detail={"text": cls.text, "flow": state.flow, "step": state.state},
        prescription_id=state.prescription_id,
    )
    _LOGGER.info(
        "second unexpected answer from patient %s in %s; handed to a person", facts.patient_id, state.flow
    )
    return Step(texts=(render("thanks_message", lang(facts)), ack_sentence(facts, now)), tasks=(task,))


def _side_path(
    state: ConversationState,
    spec: FlowSpec,
    cls: Classification,
    primary: str,
    facts: PatientFacts,
    now: datetime,
) -> Step:
    """The text is about something else (a question, a symptom, cost): handle that and keep the dialog.

    When handling it opens its own question (severity, delivery or pickup), that question comes first
    and the interrupted flow is asked again after it.
    """
    handled = free_text.respond(
        replace(cls, intent=primary, also=tuple(x for x in cls.labels if x != primary)),
        facts,
        now,
        state.prescription_id,
    )
    if handled.next_state is None:
        return replace(handled, next_state=state)
    queue = list(state.context.get("queue") or [])
    if spec.startable:
        origin = state.context.get("origin") or {
            "flow": state.flow,
            "prescription_id": state.prescription_id,
            "params": {},
        }
        queue.insert(0, origin)
    return replace(handled, next_state=_attach(handled.next_state, queue, None))


def _join(fragments: Sequence[str]) -> str:
    """One text from fragments: duplicates dropped, and "Thank you" said once."""
    out: list[str] = []
    thanked = False
    for fragment in dict.fromkeys(f.strip() for f in fragments if f.strip()):
        text = fragment
        if thanked:
            text = next((text[len(p) :] for p in _THANKS if text.startswith(p)), text)
            if text.rstrip(".!") in _THANKS_ALONE:
                continue
        thanked = thanked or text.startswith(_THANKS_START)
        out.append(text)
    return " ".join(out)


def _decision(result: Step, cls: Classification | None) -> Decision:
    """One SMS from the step's text fragments, plus its effects."""
    body = _join(result.texts)
    replies = (Reply(body, result.kind),) if body else ()
    return Decision(
        replies=replies,
        tasks=result.tasks,
        signals=result.signals,
        next_state=result.next_state,
        classification=cls,
        consent=result.consent,
    )
