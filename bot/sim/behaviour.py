"""How simulated patients answer midbot's texts: published rates (../shared/DOMAIN.md) and a seeded RNG.

Every figure below names its source; where DOMAIN.md publishes nothing the figure is marked an assumption, a
default a clinic can change (``Rates`` is a plain dataclass, and `midbot simulate` prints what it used). The
texts a patient sends are plain words and numbered choices, so they go through the real classifier and dialogs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta

__all__ = ["Answer", "Prompt", "Rates", "answer_for", "patient_rng"]


@dataclass(frozen=True)
class Rates:
    """Chances (0..1) that shape a simulated patient's answers.

    Attributes:
        checkin_completion: a side-effect check-in is answered. DOMAIN "Cadence": weekly check-ins reach 80-90%
            completion (PRO-TECT 91%; Carevive >80% in patients >= 60); the middle, 0.85.
        alert_rate: an answered check-in reports a symptom. DOMAIN "Alert load": in PRO-TECT 34% of weekly
            surveys raised an alert (Mazza et al., Qual Life Res 2024).
        urgent_share: a reported symptom is severe (3-4 on the 0-4 scale, an urgent task). DOMAIN "Alert load":
            patients rated only 10% of alerts urgent.
        reply_rate: any other outreach (refill reminder, copay offer, welcome, recovery) is answered. DOMAIN
            "What works": PENNY-GI engagement with check-ins rose to 70% after a redesign; used for every
            outreach that asks one numbered question.
        in_dialog: a patient who already answered this dialog answers its next question. Assumption (not in
            DOMAIN.md): 0.95.
        refill_yes / refill_enough: of answered refill reminders, "1 refill" / "2 still have enough"; the
            rest "3 talk to a pharmacist". Assumption: 0.75 / 0.20.
        delivery_share: a refill asked for is wanted delivered (else picked up), where the site offers both.
            Assumption: 0.5 (the synthetic practice's sites range from 0.55 to all-delivery).
        copay_yes: a copay offer is taken. DOMAIN "Abandonment": one third of abiraterone/enzalutamide
            prescriptions needed assistance (Jeong et al., JCO OP 2022): 0.33.
        consent_yes: a new patient agrees to texts naming the medicine. Assumption: 0.80.
        recovery_pickup: a "ready but not picked up" text is answered "1 schedule" (else "2 cost"). DOMAIN
            "Abandonment": 31.7% abandon at $100-500 out of pocket (Doshi et al., JCO 2018): 0.68.
        missed_doses: a check-in's "doses missed in the last 7 days" is not 0. DOMAIN "What works": SMS
            reminders take adherence from about 50% to 68% (Thakkar et al. 2016); 1 - 0.68 = 0.32 miss some.
        question_rate: a first answer is a question for the pharmacy instead. Assumption: 0.03.
        opt_out_rate: a first answer is STOP. Assumption (DOMAIN.md publishes no opt-out rate): 0.005.
        reply_median_minutes / reply_spread: the reply delay, log-normal. DOMAIN "Replies come fast": median
            3.6 minutes in a two-way diabetes SMS program (PMC3208889); the spread (sigma 1.5) puts the upper
            quartile near 10 minutes and a tenth beyond 24, towards the 29-minute half of the rheumatology
            surveys. Capped at ``reply_cap_hours`` (dialog steps time out after 12-48 h).
    """

    checkin_completion: float = 0.85
    alert_rate: float = 0.34
    urgent_share: float = 0.10
    reply_rate: float = 0.70
    in_dialog: float = 0.95
    refill_yes: float = 0.75
    refill_enough: float = 0.20
    delivery_share: float = 0.5
    copay_yes: float = 0.33
    consent_yes: float = 0.80
    recovery_pickup: float = 0.68
    missed_doses: float = 0.32
    question_rate: float = 0.03
    opt_out_rate: float = 0.005
    reply_median_minutes: float = 3.6
    reply_spread: float = 1.5
    reply_cap_hours: float = 6.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name.startswith("reply_") and name != "reply_rate":
                if not value >= 0:
                    raise ValueError(f"{name}: must be >= 0")
            elif not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: must be between 0 and 1")
        if self.refill_yes + self.refill_enough > 1.0:
            raise ValueError("refill_yes + refill_enough: must be at most 1")

    def as_dict(self) -> dict[str, float]:
        """The rates as JSON, in field order."""
        return asdict(self)


@dataclass(frozen=True)
class Prompt:
    """The question a patient has in front of them: the open dialog step after midbot's last text."""

    flow: str
    state: str
    language: str
    engaged: bool  # the patient already answered in this dialog
    days_left: int | None = None  # supply on hand, for "how many days do you have left?"


@dataclass(frozen=True)
class Answer:
    """What the patient texts back, and after how long."""

    body: str
    delay: timedelta


# Symptoms that classify as a plain side effect in both languages (fever would be an emergency, by design).
_SYMPTOMS = {
    "en": ("I have diarrhea", "I have nausea", "I feel very tired", "I have a rash", "I have mouth sores"),
    "es": (
        "tengo diarrea",
        "tengo náuseas",
        "tengo cansancio",
        "tengo sarpullido",
        "tengo llagas en la boca",
    ),
}
_QUESTIONS = {"en": "What time do you close today?", "es": "¿A qué hora cierran hoy?"}
_COST = {"en": "it is too expensive", "es": "es muy caro"}


def patient_rng(seed: int, patient_id: str) -> random.Random:
    """The patient's own random source: their answers do not depend on anyone else's."""
    return random.Random(f"midbot-sim:{seed}:{patient_id}")


def answer_for(prompt: Prompt, rates: Rates, rng: random.Random) -> Answer | None:
    """The patient's answer to ``prompt``, or None when they do not answer (or nothing is asked)."""
    chooser = _CHOOSERS.get((prompt.flow, prompt.state))
    if chooser is None:
        return None
    first = not prompt.engaged
    chance = rates.in_dialog if prompt.engaged else _first_reply_rate(prompt.flow, rates)
    if rng.random() >= chance:
        return None
    delay = _delay(rates, rng)
    if first:
        roll = rng.random()
        if roll < rates.opt_out_rate:
            return Answer("STOP", delay)
        if roll < rates.opt_out_rate + rates.question_rate:
            return Answer(_QUESTIONS[_lang(prompt)], delay)
    return Answer(chooser(prompt, rates, rng), delay)


def _first_reply_rate(flow: str, rates: Rates) -> float:
    return rates.checkin_completion if flow == "side_effect_checkin" else rates.reply_rate


def _delay(rates: Rates, rng: random.Random) -> timedelta:
    minutes = rates.reply_median_minutes * math.exp(rates.reply_spread * rng.gauss(0.0, 1.0))
    return timedelta(seconds=round(min(minutes, rates.reply_cap_hours * 60) * 60))


def _lang(prompt: Prompt) -> str:
    return "es" if prompt.language == "es" else "en"


def _refill_choice(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    roll = rng.random()
    if roll < rates.refill_yes:
        return "1"
    return "2" if roll < rates.refill_yes + rates.refill_enough else "3"


def _method(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    return "1" if rng.random() < rates.delivery_share else "2"


def _days(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    return str(max(prompt.days_left if prompt.days_left is not None else 7, 1))


def _symptoms(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    if rng.random() < rates.alert_rate:
        return rng.choice(_SYMPTOMS[_lang(prompt)])
    return "NO"


def _severity(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    if rng.random() < rates.urgent_share:
        return "3"
    return "1" if rng.random() < 0.5 else "2"  # mild or moderate: assumption, even odds


def _missed(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    return "2" if rng.random() < rates.missed_doses else "0"


def _copay(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    return "1" if rng.random() < rates.copay_yes else "2"


def _consent(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    yes = rng.random() < rates.consent_yes
    if _lang(prompt) == "es":
        return "SI" if yes else "NO"
    return "YES" if yes else "NO"


def _recovery(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    return "1" if rng.random() < rates.recovery_pickup else "2"


def _reason(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    return _COST[_lang(prompt)]


def _free_severity(prompt: Prompt, rates: Rates, rng: random.Random) -> str:
    return _severity(prompt, rates, rng)


_Chooser = Callable[[Prompt, Rates, random.Random], str]
_CHOOSERS: dict[tuple[str, str], _Chooser] = {
    ("refill_reminder", "awaiting_choice"): _refill_choice,
    ("refill_reminder", "awaiting_method"): _method,
    ("refill_reminder", "awaiting_days"): _days,
    ("side_effect_checkin", "awaiting_symptoms"): _symptoms,
    ("side_effect_checkin", "awaiting_severity"): _severity,
    ("side_effect_checkin", "awaiting_missed"): _missed,
    ("copay_assistance", "awaiting_choice"): _copay,
    ("new_start", "awaiting_consent"): _consent,
    ("abandonment_recovery", "awaiting_choice"): _recovery,
    ("abandonment_recovery", "awaiting_reason"): _reason,
    ("free_text", "awaiting_severity"): _free_severity,
}
