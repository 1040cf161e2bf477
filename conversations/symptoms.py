"""Per-drug symptom lists, symptom names in plain English and Spanish, and the red-flag set, as data."""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = [
    "DEFAULT_SYMPTOMS",
    "DRUG_SYMPTOMS",
    "RED_FLAGS",
    "SYMPTOM_LABELS",
    "drug_key",
    "drug_names",
    "examples",
    "label",
    "symptoms_for",
]

_LOGGER = logging.getLogger(__name__)

# The symptoms worth asking about first for each drug (canonical classifier names), with brand names as
# aliases. Midbot's own short list from the drugs' common side effects, not PRO-CTCAE item text.
DRUG_SYMPTOMS: dict[str, tuple[str, ...]] = {
    "capecitabine": ("diarrhea", "hand_foot", "nausea", "mouth_sores"),
    "abiraterone": ("swelling", "dizziness", "hot_flashes"),
    "ibrutinib": ("bruising", "bleeding", "palpitations", "diarrhea"),
    "palbociclib": ("fatigue", "mouth_sores", "infection"),
    "enzalutamide": ("fatigue", "falls", "hot_flashes"),
    "lenalidomide": ("infection", "rash", "diarrhea", "swelling"),
    "olaparib": ("nausea", "fatigue", "vomiting"),
    "methotrexate": ("mouth_sores", "nausea", "infection"),
    "adalimumab": ("infection", "injection_site", "rash"),
    "tofacitinib": ("infection", "diarrhea", "headache"),
}
DEFAULT_SYMPTOMS: tuple[str, ...] = ("nausea", "diarrhea", "fatigue", "rash")

_ALIASES: dict[str, str] = {
    "xeloda": "capecitabine",
    "zytiga": "abiraterone",
    "yonsa": "abiraterone",
    "imbruvica": "ibrutinib",
    "ibrance": "palbociclib",
    "xtandi": "enzalutamide",
    "revlimid": "lenalidomide",
    "lynparza": "olaparib",
    "trexall": "methotrexate",
    "otrexup": "methotrexate",
    "rasuvo": "methotrexate",
    "humira": "adalimumab",
    "xeljanz": "tofacitinib",
}

# Symptoms that need the care team at once whatever the stated severity (DOMAIN.md "red flags"); fever
# counts when the patient is on chemotherapy or states a temperature at or above the site threshold.
RED_FLAGS: frozenset[str] = frozenset(
    {"fever", "chills", "bleeding", "jaundice", "chest_pain", "trouble_breathing", "confusion", "fainting"}
)

SYMPTOM_LABELS: dict[str, dict[str, str]] = {
    "diarrhea": {"en": "diarrhea", "es": "diarrea"},
    "nausea": {"en": "nausea", "es": "náuseas"},
    "vomiting": {"en": "vomiting", "es": "vómitos"},
    "hand_foot": {"en": "sore or red hands or feet", "es": "manos o pies adoloridos"},
    "mouth_sores": {"en": "mouth sores", "es": "llagas en la boca"},
    "swelling": {"en": "swelling", "es": "hinchazón"},
    "dizziness": {"en": "dizziness", "es": "mareos"},
    "hot_flashes": {"en": "hot flashes", "es": "bochornos"},
    "bruising": {"en": "bruising", "es": "moretones"},
    "bleeding": {"en": "bleeding", "es": "sangrado"},
    "palpitations": {"en": "a racing heart", "es": "palpitaciones"},
    "fatigue": {"en": "tiredness", "es": "cansancio"},
    "infection": {"en": "fever or chills", "es": "fiebre o escalofríos"},
    "falls": {"en": "falls", "es": "caídas"},
    "rash": {"en": "rash", "es": "sarpullido"},
    "injection_site": {"en": "redness where you inject", "es": "enrojecimiento donde se inyecta"},
    "headache": {"en": "headache", "es": "dolor de cabeza"},
    "pain": {"en": "pain", "es": "dolor"},
    "fever": {"en": "fever", "es": "fiebre"},
}
_OR = {"en": "or", "es": "o"}


def drug_key(drug: str | None) -> str | None:
    """The canonical drug this text names ("Xeloda 500 mg tab" -> "capecitabine"), or None if unknown."""
    words = (drug or "").lower().replace("-", " ").replace("/", " ").split()
    for word in words:
        if word in DRUG_SYMPTOMS:
            return word
        if word in _ALIASES:
            return _ALIASES[word]
    return None


def drug_names(drug: str | None) -> tuple[str, ...]:
    """Every name of a drug midbot knows: its generic and brand names ("Xeljanz 5 mg" -> tofacitinib, xeljanz)."""
    key = drug_key(drug)
    if key is None:
        return ()
    return (key, *sorted(alias for alias, generic in _ALIASES.items() if generic == key))


def symptoms_for(drug: str | None) -> tuple[str, ...]:
    """The symptoms to ask about for a drug; the default list for drugs midbot has no list for."""
    key = drug_key(drug)
    return DRUG_SYMPTOMS[key] if key else DEFAULT_SYMPTOMS


def label(symptom: str, language: str) -> str:
    """A symptom in plain words in the patient's language (the canonical name, spaced, if unknown)."""
    names = SYMPTOM_LABELS.get(symptom)
    if names is None:
        return symptom.replace("_", " ")
    return names.get(language, names["en"])


def examples(symptoms: Iterable[str], language: str, limit: int = 3) -> str:
    """A short "a, b or c" list of symptoms for a question."""
    names = [label(s, language) for s in list(symptoms)[:limit]]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {_OR.get(language, 'or')} {names[-1]}"
