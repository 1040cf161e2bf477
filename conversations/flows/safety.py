"""Dialog-level safety on a classification: what a reply to an open question may and may not be taken as.

Pure functions, applied to every classification (conversations.ensemble) and again by the engine:

- a negated or refused answer ("no quiero el refill", "don't send it") is never a ``confirm``;
- an opt-out ("don't send me any more", "ya no me manden mensajes") or an emergency inside a longer answer wins
  over the open question's choices ("1 but stop texting me" is an opt-out);
- a question about stopping, skipping or holding a medicine is a ``question``, not a symptom report nor an
  opt-out, unless a symptom is named;
- a follow-up that denies a symptom ("no, I was asking about…", "solo preguntaba") records no symptom;
- an opt-in in words ("you can text me again", "ya pueden escribirme otra vez") is ``opt_in``;
- an opt-out scoped to one kind of text keeps ``opt_out`` and carries ``values["optout_scope"]``.
"""

from __future__ import annotations

import re
from dataclasses import replace

from conversations.keywords import wants_texts
from conversations.normalize import Normalized, WordPattern, normalize
from conversations.scope import optout_scope
from conversations.types import PRIMARY_ORDER, Classification

__all__ = ["guard", "guard_text"]

_NOT_STOPPING = r"(?<!dont )(?<!do not )(?<!never )(?<!no )"
# WordPatterns: searched only from a word where a match can start (the same matches, far cheaper in texts
# that hold none, which is nearly all of them).
_OPT_OUT = WordPattern(
    r"\b(?:dont|do not|please dont|never) (?:send|text|message|contact|write)\w* (?:me |us |her |him )?(?:any ?more"
    r"|again|anything (?:else|more)|more|no more)\b"
    + r"|"
    + _NOT_STOPPING
    + r"\bstop (?:sending|texting|messaging|contacting) (?:me|us|her|him|this number)\b"
    r"|\bno more (?:\w+ ){0,3}(?:texts|messages|text messages|reminders|check ?ins|surveys)\b"
    r"|\btake (?:me|us|her|him|them|my \w+|this number|my number|her number|his number) off (?:your|the|this|of)"
    r"(?: \w+){0,2} (?:list|texts?|messages?|text list|contacts?|program|service)\b"
    r"|\b(?:stop|quit) (?:sending|texting|messaging)(?: me| us| her| him)? (?:the|these|those|this|that|your|all)"
    r"(?: \w+){0,3} (?:texts?|messages?|reminders?|check ?ins?|surveys?|stuff|things|alerts?|notifications?)\b"
    r"|\b(?:have to|had to|i already|already) (?:say|said|told you|tell you)\w* (?:to )?stop\b"
    r"|\b(?:passed away|has died|just died|fallecio|murio|se nos fue|en paz descanse|went to be with the lord)\b"
    r"|\bno (?:me |nos |le )?(?:vuelvan|vuelva) a (?:textear|escribir|mandar|enviar)\w*"
    r"|\b(?:deja|dejen|deje) de (?:textear|mandar|escribir|enviar)\w*"
    r"|\b(?:parale|parenle|para|paren) (?:ya )?con (?:los|las|sus|tantos|tantas) (?:textos|mensajes)\b"
    r"|^(?:stop|alto|para) (?:please|pls|plz|porfavor|por favor|porfa)\b"
    r"|\bya no (?:me |nos |le )?(?:escriban|escriba|textee|texteen|contacten)\w*\b"
    r"|\bya no (?:me |nos |le )?(?:manden|envien|mande)\w* (?:mas |ningun |los |sus )?(?:mensajes|textos|nada)\b"
    r"|\bno (?:me |nos |le )?(?:escriban|textee|texteen) (?:mas|nada|otra vez)\b"
    r"|\bno (?:me |nos |le )?(?:manden|envien) (?:mas )?(?:mensajes|textos)\b"
    r"|\bdejen de (?:mandar|escribir|enviar|textear)\w*\b"
    r"|^no (?:more )?(?:texts|text messages|messages|textos|mensajes)(?: (?:[.,!]|please|pls|ever|again|thanks"
    r"|thank you|period|at all|por favor|nunca|gracias))*$"
    r"|\bno quiero que (?:me |nos |le )?(?:contacten|escriban|texteen|escriba)\b"
    r"|\bno quiero que (?:me |nos |le )?(?:manden|envien|mande)\w* (?:mas )?(?:mensajes|textos|recordatorios)\b"
)
# Beyond the shared wish that the texts go on (keywords.wants_texts): a bare "don't stop" also keeps them here.
_DONT_STOP = WordPattern(r"\b(?:dont|do not|never) stop\b")
_OPT_IN = WordPattern(
    r"\b(?:you |u )?(?:can|may|could) (?:start )?(?:text|message|write|contact)\w* (?:me|us) again\b"
    r"|\b(?:start|resume|turn on) (?:the |my )?(?:texts|messages|reminders|texting|sending)\w*(?: \w+)? again\b"
    r"|\b(?:want|need|like) (?:the |my )?(?:texts|messages|reminders|refill reminders) back\b"
    r"|\badd (?:me|us|her|him) back\b|\bput (?:me|us) back on\b|\bsign (?:me|us) (?:back )?up again\b"
    r"|\bya (?:me |nos )?pueden (?:volver a )?(?:escribir|mandar|enviar|textear)\w*\b"
    r"|\b(?:escribanme|mandenme|envienme|textenme|texteenme)\w* (?:otra vez|de nuevo)\b"
    r"|\bquiero (?:volver a )?recibir (?:los |sus )?(?:mensajes|recordatorios|textos)\b"
    r"|\b(?:vuelvan|pueden volver) a (?:escribir|mandar|enviar)\w*\b"
)
_NOT_OPT_IN = re.compile(
    r"\b(?:if|dont|do not|never|no|nunca|si)\b(?: \w+){0,3} (?:text|message|escrib|mand)"
)
_REFUSED = re.compile(
    r"\bno quiero\b|\bno (?:lo|la|las|los) (?:quiero|necesito|ocupo)\b|\bno (?:me )?(?:la|lo) (?:manden|envien|mande)\b"
    r"|\b(?:dont|do not) (?:want|need) (?!to (?:run|miss|be without|go without|forget|wait|lose))"
    r"|\b(?:dont|do not) (?:send|refill|ship|mail|deliver) (?:it|that|them|the)\b|\bno thanks?\b|\bno gracias\b"
    r"|\bnot (?:now|yet|this (?:time|month|week))\b|\bhold off\b"
    r"|\b(?:definitely|absolutely|certainly|of course|hell|heck) (?:not|no)\b|\b(?:claro|por supuesto) que no\b"
)
_MEDICINE_QUESTION = WordPattern(
    r"\b(?:should|can|could|may|do|must|shall) (?:i|we|he|she) (?:\w+ )?(?:stop|quit|skip|hold|pause|cut back"
    r"|come off|go off|keep taking)\b|\b(?:puedo|debo|tengo que|se puede|deberia) (?:\w+ )?(?:dejar|suspender|parar"
    r"|saltar|quitar)\w*\b"
)
_ABOUT_TEXTS = re.compile(r"\b(?:texts?|messages?|reminders?|mensajes?|recordatorios?|textos?)\b")
_DENIAL = re.compile(
    r"^(?:no|nope|nah|no no)?(?: ,)? ?(?:i was|i am|im|i was just|just|only) (?:asking|wondering|curious)\b"
    r"|\b(?:i was|im) (?:just |only )?asking (?:about|for|if|because)\b"
    r"|\b(?:solo|nomas|nada mas|solamente) (?:estaba )?pregunt\w*|\bera (?:solo )?una pregunta\b"
    r"|^(?:no ,? )?(?:i|he|she) (?:dont|doesnt|do not|does not) have (?:it|that|any)\b"
    r"|^no ,? (?:no )?(?:lo|la) tengo\b"
)
# Unaccented "si" opening a clause with a verb or "no" is "if" ("si no mejora les aviso"), never a yes.
_CONDITIONAL = re.compile(r"^si (?:no|ya|me|se|le|te|es|esta|sigue|empeora|mejora|tengo|tiene|hay|vuelve)\b")
_ANSWER_CONTEXTS = frozenset({"yes_no", "refill_reminder", "copay_offer"})
_PATTERN_CERTAINTY = 0.9  # as ensemble._RULE_CERTAINTY


def _ordered(labels: set[str]) -> tuple[str, tuple[str, ...]]:
    ordered = [label for label in PRIMARY_ORDER if label in labels and label != "unknown"] or ["unknown"]
    return ordered[0], tuple(ordered[1:])


def guard_text(cls: Classification, norm: Normalized, context: str | None) -> Classification:
    """The classification with the dialog-level safety rules applied (see the module docstring)."""
    text, labels = norm.text, set(cls.labels)
    symptoms = cls.symptoms
    values = dict(cls.values)
    keep_sending = wants_texts(norm) or bool(_DONT_STOP.search(norm))
    if _OPT_OUT.search(norm) and not keep_sending:
        labels.add("opt_out")
        labels -= {"confirm", "opt_in"}
    elif keep_sending and "opt_out" in labels:
        labels.discard("opt_out")  # "don't stop the reminders": keep sending (LABELS.md)
    elif _OPT_IN.search(norm) and not _NOT_OPT_IN.search(text) and "opt_out" not in labels:
        labels.add("opt_in")
        labels -= {"unknown", "ack", "refill_request", "question", "confirm"}
    if "confirm" in labels and not norm.yes_accent and _CONDITIONAL.search(text):
        labels.discard("confirm")
    if "confirm" in labels and _REFUSED.search(text):
        labels.discard("confirm")
        if context in _ANSWER_CONTEXTS or context is None:
            labels.add("decline")
    if _MEDICINE_QUESTION.search(norm) and "emergency" not in labels:
        if not symptoms:
            labels.discard("side_effect")
        if not _ABOUT_TEXTS.search(text):
            labels.discard("opt_out")
        labels.add("question")
        labels -= {"ack", "confirm", "decline"} if context not in _ANSWER_CONTEXTS else set()
    if _DENIAL.search(text) and "emergency" not in labels:
        labels -= {"side_effect", "decline"}
        symptoms = ()
        labels.add("question")
    labels.discard("unknown")
    intent, also = _ordered(labels)
    if intent == "opt_out":
        scope = optout_scope(norm)
        if scope is not None:
            values["optout_scope"] = scope
    else:
        values.pop("optout_scope", None)
    if intent == cls.intent and also == cls.also and symptoms == cls.symptoms and values == cls.values:
        return cls
    severity = cls.severity if "side_effect" in (intent, *also) else None
    # a primary label set by one of these patterns is as sure as the rules' own safety net
    confidence = cls.confidence if intent == cls.intent else max(cls.confidence, _PATTERN_CERTAINTY)
    return replace(
        cls,
        intent=intent,
        also=also,
        symptoms=symptoms,
        values=values,
        severity=severity,
        confidence=confidence,
    )


def guard(cls: Classification, context: str | None = None) -> Classification:
    """guard_text for a classification alone (the text is normalised again)."""
    return guard_text(cls, normalize(cls.text), context)
