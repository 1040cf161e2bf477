"""The learned model and the lexicon rules, combined: the model reads, the rules are the safety net.

- Bare answers to the open question ("1", "si", "2", "no", "3 doses") stay rule-driven: the context decides
  them (LABELS.md) and the rules read them exactly.
- An emergency or an opt-out flagged by either the rules or the model wins (a missed red flag or a missed
  revocation is the harmful error; see OPTIONS for the model's thresholds).
- Otherwise the model's primary label stands; further labels come from the model's per-label head and from
  the rules' labels the model does not reject.
- Severity: a confident rule (a CTCAE count, or function such as "can't eat") decides; else the model's
  severity head, which sees the rules' intensity words as a feature.
- ``confidence`` is the model's (temperature-calibrated) probability of the primary label; for bare answers and
  overrides by a confident rule it is the rule's measured reliability. Below CLARIFY_BELOW a caller should ask
  again or hand the text to a person.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

from conversations.flows.safety import guard_text
from conversations.lexicons.emergency import FEVER_THRESHOLD_F
from conversations.model import IntentModel, ModelPrediction, text_features, word_grams
from conversations.normalize import Normalized
from conversations.severity import stated_severity
from conversations.types import PRIMARY_ORDER, Classification

__all__ = ["CLARIFY_BELOW", "OPTIONS", "Options", "RuleResult", "combine", "feature_list", "predict"]

_LOGGER = logging.getLogger(__name__)

# Below this confidence the text should be clarified with the patient or handed to a person (bot/ may use it).
CLARIFY_BELOW = 0.5


@dataclass(frozen=True, slots=True)
class RuleResult:
    """What the lexicon rules found in one text, and what the ensemble needs to weigh it."""

    result: Classification
    norm: Normalized
    context: str | None
    bare: bool  # a short answer the open question decides, or a tapback
    scope: str | None = None  # the program kind a scoped opt-out names
    quieted: bool = False  # the rules saw a symptom negated or said to be over ("no blood in it")
    keep_texts: bool = False  # the rules read a wish that the texts go on ("don't stop the reminders")
    past_event: bool = False  # the rules read a red flag told as history ("a faint two years ago")

    @property
    def words(self) -> tuple[str, ...]:
        return self.norm.words


@dataclass(frozen=True, slots=True)
class Options:
    """The ensemble's knobs (conversations.train measures alternatives by swapping them)."""

    use_model: bool = True
    safety_net: bool = True  # False: the model's argmax alone (measured, not shipped)
    bare_from_rules: bool = True
    rule_emergency_wins: bool = True
    rule_opt_out_wins: bool = True
    model_emergency_at: float = (
        0.2  # the model's own emergency probability that raises one (measured: --compare)
    )
    model_opt_out_at: float = 0.6  # measured: 0.4-0.5 invent opt-outs (precision 95%), 0.6 gives 98.9%
    also_at: float = 0.5
    rule_also_at: float = (
        0.2  # a rule label is kept as a further label unless the model is this sure it is not
    )
    severity_rules_first: bool = True
    rule_words_severity: bool = True  # the rules' intensity words before the model's severity head
    bare_confidence: float = 0.97
    # When the rules found nothing, the model must be this sure: below it the text goes to a person as
    # "unknown" instead of a guess (garbage such as markup scored 0.29 for side_effect).
    unknown_needs: float = 0.3  # measured out of fold (train --cv, 2026-12-04): 0.2-0.35 give the same accuracy
    short_unknown_needs: float = 0.9  # the same, for texts of a few words ("1" with no question open)
    # Below this the model does not override the rules' primary label, unless it gives that label less than
    # rule_kept_at (measured out of fold: train --compare).
    override_needs: float = 0.4
    rule_kept_at: float = 0.05
    quieted_emergency_at: float = 0.6
    past_emergency_at: float = 0.97  # the model's emergency threshold when the rules read a red flag as history
    opt_out_emergency_at: float = 0.6  # the model's emergency threshold when the rules read an opt-out
    opt_in_opt_out_at: float = 0.9  # the model's opt-out threshold when the rules read an opt-in
    question_opt_out_at: float = 0.8  # the same when the rules read a question ("how do these texts work?")
    below_fever_emergency_at: float = 0.95  # the same when the rules read a temperature below the threshold  # the model's emergency threshold when the rules read a negation
    dialog_safety: bool = True  # conversations.flows.safety on every result
    # A symptom the rules read as present now outranks the model's "question" (LABELS.md: asks about a symptom
    # they have now: side_effect, also question).
    symptom_over_question: bool = True


OPTIONS = Options()
_SAFETY = ("emergency", "opt_out")
_SHORT = 4
_NEGATORS = frozenset("no not never without sin nunca ni zero ningun ninguna".split())
_ALARM_WORDS = frozenset(
    "blood bleeding fever temperature temp chest pain swelling swollen sangre sangrado fiebre calentura pecho"
    " dolor hinchazon".split()
)
_ANSWER_CONTEXTS = frozenset({"yes_no", "refill_reminder", "copay_offer"})
_ANSWERS = frozenset(
    {"confirm", "decline"}
)  # the rules read these from the context ("only 3 left": refill it)
_ANSWER_LIKE = frozenset({"confirm", "decline", "refill_request", "ack", "unknown"})
# Precision of the rules' own emergency and opt-out out of fold on the shared train files (train --compare).
_RULE_CERTAINTY = 0.9
_RULE_RANK = {label: i for i, label in enumerate(PRIMARY_ORDER)}


def _rule_features(rules: RuleResult) -> list[str]:
    result = rules.result
    labels = result.labels if result.intent != "unknown" else ()
    return text_features(rules.words, rules.context, labels, result.severity, rules.norm.question)


def feature_list(rules: RuleResult) -> list[str]:
    """The model's features of a text, from what the rules' pass found (character grams included)."""
    return [gram for word in rules.words for gram in word_grams(word)] + _rule_features(rules)


def predict(rules: RuleResult, model: IntentModel) -> ModelPrediction:
    """The model's reading of a text the rules have seen."""
    return model.predict(rules.words, _rule_features(rules))


def _denied_alarm(rules: RuleResult) -> bool:
    """A negator right before an alarm word ("no blood in it", "sin fiebre"): the rules read it as denied."""
    words = rules.words
    return any(
        word in _NEGATORS and any(w in _ALARM_WORDS for w in words[i + 1 : i + 4])
        for i, word in enumerate(words)
    )


def _primary(rules: RuleResult, pred: ModelPrediction, options: Options) -> tuple[str, float]:
    found = set(rules.result.labels)
    primary, confidence = pred.best()
    if not options.safety_net:
        return primary, confidence
    model_at = options.model_emergency_at
    temperature = rules.result.values.get("temperature_f")
    counted = "days_left" in rules.result.values  # "38 pills left": a number the rules read as a count
    if rules.quieted or counted or _denied_alarm(rules):
        model_at = max(model_at, options.quieted_emergency_at)  # the rules read "no blood": not alarm
    if rules.past_event:
        model_at = max(model_at, options.past_emergency_at)  # "had chest pain back in May, it was the gallbladder"
    if "opt_out" in found and "emergency" not in found:
        model_at = max(model_at, options.opt_out_emergency_at)  # an opt-out the rules read stays one
    if isinstance(temperature, float) and temperature < FEVER_THRESHOLD_F:
        # a reading below the threshold is a side effect (LABELS.md); only another red flag makes it more
        model_at = max(model_at, options.below_fever_emergency_at)
    if "emergency" in found and options.rule_emergency_wins or pred.primary["emergency"] >= model_at:
        return "emergency", max(
            pred.calibrated["emergency"], _RULE_CERTAINTY if "emergency" in found else 0.0
        )
    if primary == "emergency":  # below the threshold the model was not sure: its next label decides
        primary = max((k for k in pred.primary if k != "emergency"), key=pred.primary.__getitem__)
        confidence = pred.calibrated[primary]
    opt_out_at = options.model_opt_out_at
    if "opt_in" in found and "opt_out" not in found:
        opt_out_at = max(opt_out_at, options.opt_in_opt_out_at)  # "she texted stop, I still want them"
    if "question" in found and "opt_out" not in found:
        opt_out_at = max(opt_out_at, options.question_opt_out_at)
    if rules.keep_texts and "opt_out" not in found:
        opt_out_at = math.inf  # a confident rule: "don't quit sending the reminders" is never a revocation
    if "opt_out" in found and options.rule_opt_out_wins or pred.primary["opt_out"] >= opt_out_at:
        return "opt_out", max(pred.calibrated["opt_out"], _RULE_CERTAINTY if "opt_out" in found else 0.0)
    if primary == "opt_out":
        primary = max((k for k in pred.primary if k not in _SAFETY), key=pred.primary.__getitem__)
        confidence = pred.calibrated[primary]
    return primary, confidence


def _also(primary: str, rules: RuleResult, pred: ModelPrediction, options: Options) -> tuple[str, ...]:
    rank = _RULE_RANK[primary]
    found = set(rules.result.labels)
    keep = {
        label
        for label, p in pred.labels.items()
        if p >= options.also_at or (label in found and p >= options.rule_also_at)
    }
    if primary != "emergency":
        keep -= {"emergency"}
    elif "side_effect" in found:
        keep.add("side_effect")  # a red flag the rules read as a symptom (chest pain, swollen lips) is one
    if primary != "opt_out":
        keep -= {"opt_out"}
    return tuple(
        label for label in PRIMARY_ORDER if label in keep and _RULE_RANK[label] > rank and label != "unknown"
    )


def _severity(
    rules: RuleResult, pred: ModelPrediction, labels: tuple[str, ...], options: Options
) -> str | None:
    if "side_effect" not in labels:
        return None
    if options.severity_rules_first:
        if (confident := stated_severity(rules.norm)) is not None:
            return "very_severe" if rules.result.severity == "very_severe" else confident
        if options.rule_words_severity and rules.result.severity is not None:
            return rules.result.severity
    level = max(pred.severity, key=pred.severity.__getitem__)
    return None if level == "null" else level


def combine(rules: RuleResult, model: IntentModel | None, options: Options | None = None) -> Classification:
    """The final Classification of one text from the rules' pass and the model (None: the rules alone)."""
    options = options or OPTIONS
    result = _combine(rules, model, options)
    return guard_text(result, rules.norm, rules.context) if options.dialog_safety else result


def _stays_unknown(rules: RuleResult, primary: str, confidence: float, options: Options) -> bool:
    """The rules read nothing and the model may not guess: too unsure, or only the open question speaks."""
    if rules.result.intent != "unknown" or primary in _SAFETY:
        return False
    needs = options.unknown_needs if len(rules.words) > _SHORT else options.short_unknown_needs
    # no rating, severity word or symptom the rules could read ("banana"): the severity question is asked
    # again, never a grade guessed from the question alone
    return confidence < needs or (rules.context == "checkin_severity" and primary == "side_effect")


def _combine(rules: RuleResult, model: IntentModel | None, options: Options) -> Classification:
    result = rules.result
    if rules.scope is not None:
        result = replace(result, values={**result.values, "optout_scope": rules.scope})
    if model is None or not options.use_model:
        return result
    if rules.bare and options.bare_from_rules:
        return replace(result, confidence=options.bare_confidence)
    pred = predict(rules, model)
    primary, confidence = _primary(rules, pred, options)
    if _stays_unknown(rules, primary, confidence, options):
        return replace(result, confidence=round(min(result.confidence, 1.0 - confidence), 3))
    if (
        result.intent not in ("unknown", primary)
        and primary not in _SAFETY
        and confidence < options.override_needs
        and pred.calibrated[result.intent] >= options.rule_kept_at
    ):
        # the model is unsure and does not rule out what the rules read: the rules' reading stands
        primary, confidence = result.intent, min(confidence, pred.calibrated[result.intent])
    denied = rules.quieted or _denied_alarm(rules)
    if denied and primary == "side_effect" and "side_effect" not in result.labels:
        return result  # the rules read the symptom as denied ("no blood in it"): no symptom is invented
    if primary == "unknown":
        confidence = min(confidence, result.confidence)  # "unknown" always asks for a clarification
    if rules.context is None and result.intent == "ack" and primary in _ANSWERS:
        primary = "ack"  # no question is open: nothing to confirm or decline ("no chest pain", "ok")
    if rules.context is None and result.intent == "unknown" and primary in _ANSWERS and confidence < 0.5:
        # no question is open and the model only guesses a yes or a no: ask ("my stool has no blood in it")
        primary, confidence = "unknown", min(confidence, result.confidence)
    if (
        options.symptom_over_question
        and primary == "question"
        and result.intent == "side_effect"
        and not rules.quieted
    ):
        primary, confidence = "side_effect", max(confidence, pred.calibrated["side_effect"])
    if result.intent == "missed_dose" and "missed_doses" in result.values and primary in _ANSWER_LIKE:
        # a count of missed doses the rules read ("no, but I missed 2 doses"): the count is the news
        primary, confidence = "missed_dose", max(pred.calibrated["missed_dose"], _RULE_CERTAINTY)
    if rules.context in _ANSWER_CONTEXTS and result.intent in _ANSWERS and primary in _ANSWER_LIKE:
        primary, confidence = result.intent, max(confidence, pred.calibrated[result.intent])
    also = _also(primary, rules, pred, options)
    labels = (primary, *also)
    severity = _severity(rules, pred, labels, options)
    values = dict(result.values)
    if "opt_out" not in labels:
        values.pop("optout_scope", None)
    return replace(
        result,
        intent=primary,
        also=also,
        severity=severity,
        confidence=round(float(confidence), 3),
        values=values,
    )
