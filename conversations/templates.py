"""Message templates in English and Spanish: midbot's own plain words, PHI-minimal by default."""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping

__all__ = [
    "CUSTOM_PLACEHOLDERS",
    "unknown_placeholders",
    "LANGUAGES",
    "TEMPLATES",
    "WEEKDAYS",
    "fill_custom",
    "language_of",
    "render",
]

_LOGGER = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("en", "es")

# English stays inside GSM-7 (straight quotes, no dashes beyond "-"), so 160/153-character segments apply.
# Spanish accents force UCS-2 (70/67 per segment): those texts are kept short. Placeholders: first_name,
# site_name, site_phone, med / med_cap (the drug only with detailed consent), days_text, when, copay,
# examples, drug.
TEMPLATES: dict[str, dict[str, str]] = {
    # -- framing ----------------------------------------------------------------------------------------
    "greet": {
        "en": "Hi {first_name}, this is {site_name}.",
        "es": "Hola {first_name}, le escribe {site_name}.",
    },
    "greet_anon": {"en": "Hi, this is {site_name}.", "es": "Hola, le escribe {site_name}."},
    "stop_line": {"en": "Reply STOP to opt out.", "es": "Para cancelar, responda STOP."},
    "bundle_more": {"en": "Then 1 more quick question.", "es": "Luego, 1 pregunta más."},
    "bundle_next": {"en": "One more question:", "es": "Una pregunta más:"},
    "followup_prefix": {"en": "Reminder from {site_name}:", "es": "Recordatorio de {site_name}:"},
    "reask_prefix": {"en": "Sorry, we did not understand.", "es": "Perdón, no le entendimos."},
    "thanks": {"en": "Thank you.", "es": "Gracias."},
    "thanks_message": {"en": "Thank you for your message.", "es": "Gracias por su mensaje."},
    "med_generic": {"en": "your medicine", "es": "su medicamento"},
    "med_generic_cap": {"en": "Your medicine", "es": "Su medicamento"},
    "med_named_cap": {"en": "Your {drug}", "es": "Su {drug}"},
    "day_one": {"en": "1 day", "es": "1 día"},
    "day_many": {"en": "{days} days", "es": "{days} días"},
    # -- when a person answers ----------------------------------------------------------------------
    "when_today": {"en": "today", "es": "hoy"},
    "when_tomorrow": {"en": "tomorrow", "es": "mañana"},
    "when_weekday": {"en": "on {day}", "es": "el {day}"},
    "when_soon": {"en": "as soon as we can", "es": "lo antes posible"},
    "ack_today": {"en": "A pharmacist will text you back today.", "es": "Un farmacéutico le responderá hoy."},
    "ack_later": {
        "en": "A pharmacist will text you back {when}. If this is an emergency call 911.",
        "es": "Un farmacéutico le responderá {when}. Si es una emergencia, llame al 911.",
    },
    # -- safety -------------------------------------------------------------------------------------
    "emergency": {
        "en": "Please call 911 or go to the nearest ER now. We have alerted your care team at {site_name}.",
        "es": "Llame al 911 o vaya a la sala de emergencias ahora. Ya avisamos a su equipo médico.",
    },
    "emergency_call_clinic": {
        "en": "Fever or chills on treatment needs care now: call {site_name} at {urgent_phone}, day or night. "
        "Trouble breathing or fainting: call 911.",
        "es": "La fiebre o escalofríos en su tratamiento necesitan atención ya: llame a {site_name} al "
        "{urgent_phone}, de día o de noche. Si le falta el aire o se desmaya, llame al 911.",
    },
    "emergency_988": {
        "en": "If you or someone you care for is thinking about self-harm, call or text 988 now.",
        "es": "Si usted o alguien a quien cuida piensa en hacerse daño, llame o escriba al 988 ahora.",
    },
    "help": {
        "en": "{site_name}: for help call {site_phone}. Msg & data rates may apply. Reply STOP to opt out.",
        "es": "{site_name}: para ayuda llame al {site_phone}. Para no recibir más, responda STOP.",
    },
    "optout_how": {
        "en": "To stop all texts from {site_name}, reply STOP.",
        "es": "Para no recibir más mensajes de {site_name}, responda STOP.",
    },
    "wrong_number": {
        "en": "Thank you for letting us know. We will fix our records.",
        "es": "Gracias por avisarnos. Corregiremos nuestros datos.",
    },
    # -- refill reminder ----------------------------------------------------------------------------
    "refill_ask": {
        "en": "Time to refill {med}: about {days_text} left. "
        "Reply 1 to refill, 2 if you still have enough, 3 to talk to a pharmacist.",
        "es": "Es hora de resurtir {med} (quedan unos {days_text}). "
        "Responda 1 para resurtir, 2 si aún tiene, 3 para hablar con un farmacéutico.",
    },
    "refill_ask_now": {
        "en": "Time to refill {med}. Reply 1 to refill, 2 if you still have enough, 3 to talk to a pharmacist.",
        "es": "Es hora de resurtir {med}. Responda 1 para resurtir, 2 si aún tiene, "
        "3 para hablar con un farmacéutico.",
    },
    "refill_method": {
        "en": "Thank you! Reply 1 for delivery or 2 for pickup.",
        "es": "¡Gracias! Responda 1 para envío a domicilio o 2 para recoger en la farmacia.",
    },
    "refill_method_reask": {
        "en": "Reply 1 for delivery or 2 for pickup.",
        "es": "Responda 1 para envío a domicilio o 2 para recoger en la farmacia.",
    },
    "refill_queued_delivery": {
        "en": "Thank you! We will prepare your refill for delivery and text you when it ships.",
        "es": "¡Gracias! Prepararemos su resurtido para envío y le avisaremos cuando salga.",
    },
    "refill_queued_pickup": {
        "en": "Thank you! We will prepare your refill and text you when it is ready for pickup.",
        "es": "¡Gracias! Prepararemos su resurtido y le avisaremos cuando esté listo.",
    },
    "refill_queued": {
        "en": "Thank you! We will prepare your refill and text you when it is ready.",
        "es": "¡Gracias! Prepararemos su resurtido y le avisaremos cuando esté listo.",
    },
    "refill_ask_days": {
        "en": "OK. About how many days of medicine do you have left? Reply with a number.",
        "es": "Entendido. ¿Para cuántos días le queda medicamento? Responda con un número.",
    },
    "refill_deferred": {
        "en": "Thank you. We will remind you again before you run out.",
        "es": "Gracias. Le avisaremos de nuevo antes de que se le acabe.",
    },
    "refill_surplus": {
        "en": "Thank you. A pharmacist will check in with you {when} about your doses.",
        "es": "Gracias. Un farmacéutico le contactará {when} sobre sus dosis.",
    },
    # -- side-effect check-in (generic 0-4 scale, midbot's own words) ------------------------------
    "checkin_ask": {
        "en": "Any side effects since your last fill? Reply NO or tell us what you feel, like {examples}.",
        "es": "¿Algún efecto secundario desde su último surtido, como {examples}? "
        "Responda NO o díganos qué siente.",
    },
    "checkin_ask_drug": {
        "en": "Any side effects from {drug} since your last fill? "
        "Reply NO or tell us what you feel, like {examples}.",
        "es": "¿Algún efecto de {drug} desde su último surtido, como {examples}? "
        "Responda NO o díganos qué siente.",
    },
    "checkin_severity": {
        "en": "How bad is it at its worst? Reply 0 none, 1 mild, 2 moderate, 3 severe, 4 very severe.",
        "es": "¿Qué tan fuerte es en su peor momento? Responda 0 nada, 1 leve, 2 moderado, 3 fuerte, 4 muy fuerte.",
    },
    "checkin_missed": {
        "en": "How many doses did you miss in the last 7 days? Reply with a number, 0 if none.",
        "es": "¿Cuántas dosis olvidó en los últimos 7 días? Responda con un número, 0 si ninguna.",
    },
    "checkin_what": {
        "en": "What do you feel? Tell us in a few words.",
        "es": "¿Qué siente? Díganos en pocas palabras.",
    },
    "checkin_good": {"en": "Glad to hear it.", "es": "Qué bueno."},
    "checkin_done": {
        "en": "Thank you! Text us here any time if something changes.",
        "es": "¡Gracias! Escríbanos aquí si algo cambia.",
    },
    "checkin_missed_task": {
        "en": "Thank you for telling us. A pharmacist will contact you {when} to help.",
        "es": "Gracias por decirnos. Un farmacéutico le contactará {when} para ayudarle.",
    },
    "triage_urgent": {
        "en": "Please call us now at {site_phone}. We have alerted your care team.",
        "es": "Llámenos ahora al {site_phone}. Ya avisamos a su equipo médico.",
    },
    "triage_moderate": {
        "en": "Thank you. A pharmacist will contact you {when} about this.",
        "es": "Gracias. Un farmacéutico le contactará {when} sobre esto.",
    },
    "triage_mild": {
        "en": "Thank you. Call us at {site_phone} if it gets worse.",
        "es": "Gracias. Llámenos al {site_phone} si empeora.",
    },
    # -- copay assistance ---------------------------------------------------------------------------
    "copay_offer": {
        "en": "Your next fill will cost ${copay}. We may be able to lower it. "
        "Reply 1 if you want help with the cost, 2 for no thanks.",
        "es": "Su próximo surtido costará ${copay}. Quizás podamos bajarlo. "
        "Responda 1 si quiere ayuda con el costo, 2 si no.",
    },
    "copay_offer_generic": {
        "en": "We may be able to lower the cost of {med}. Reply 1 if you want help with the cost, 2 for no thanks.",
        "es": "Quizás podamos bajar el costo de {med}. Responda 1 si quiere ayuda con el costo, 2 si no.",
    },
    "copay_opened": {
        "en": "Thank you. Our team will contact you {when} about help with the cost.",
        "es": "Gracias. Nuestro equipo le contactará {when} para ayudarle con el costo.",
    },
    "copay_declined": {
        "en": "OK. If the cost becomes a problem, call us at {site_phone}.",
        "es": "Entendido. Si el costo es un problema, llámenos al {site_phone}.",
    },
    # -- new start ----------------------------------------------------------------------------------
    "newstart_welcome": {
        "en": "Welcome to {site_name}, {first_name}! We will text you about refills and how you feel. "
        "Questions? Reply here or call {site_phone}.",
        "es": "Bienvenido a {site_name}. Le escribiremos sobre resurtidos y su salud. Dudas: {site_phone}.",
    },
    "newstart_consent": {
        "en": "Reply YES if we may name your medicine in texts, NO to keep texts general.",
        "es": "¿Podemos nombrar su medicamento en los mensajes? Responda SI o NO.",
    },
    "newstart_yes": {
        "en": "Thank you. We will name your medicine in our texts.",
        "es": "Gracias. Nombraremos su medicamento en los mensajes.",
    },
    "newstart_no": {
        "en": "Thank you. We will keep our texts general.",
        "es": "Gracias. Sus mensajes seguirán siendo generales.",
    },
    # -- abandonment recovery -------------------------------------------------------------------
    "abandon_ask": {
        "en": "{med_cap} has been ready for {days_text}. Reply 1 to schedule pickup or delivery, "
        "2 if cost is a problem, 3 if you no longer need it.",
        "es": "{med_cap} está listo hace {days_text}. Responda 1 para recogerlo o recibirlo, "
        "2 si el costo es un problema, 3 si ya no lo necesita.",
    },
    "abandon_ask_nodays": {
        "en": "{med_cap} is ready. Reply 1 to schedule pickup or delivery, "
        "2 if cost is a problem, 3 if you no longer need it.",
        "es": "{med_cap} está listo. Responda 1 para recogerlo o recibirlo, "
        "2 si el costo es un problema, 3 si ya no lo necesita.",
    },
    "abandon_scheduled": {
        "en": "Thank you! Our team will contact you {when} to set up pickup or delivery.",
        "es": "¡Gracias! Nuestro equipo le contactará {when} para la entrega.",
    },
    "abandon_why": {
        "en": "Thank you for telling us. In a few words, why do you no longer need it?",
        "es": "Gracias por avisarnos. En pocas palabras, ¿por qué ya no lo necesita?",
    },
    "abandon_noted": {
        "en": "Thank you. A pharmacist will review this and contact you if needed.",
        "es": "Gracias. Un farmacéutico lo revisará y le contactará si hace falta.",
    },
}

WEEKDAYS: dict[str, tuple[str, ...]] = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}


def language_of(language: str | None) -> str:
    """Map a patient language tag ("es", "es-MX", "EN") to a template language, English by default."""
    tag = (language or "").strip().lower()[:2]
    return tag if tag in LANGUAGES else "en"


def render(key: str, language: str, **values: object) -> str:
    """Render a built-in template.

    Args:
        key: a key of TEMPLATES.
        language: the patient's language; anything but Spanish renders English.
        **values: the placeholders the template uses.

    Returns:
        The text, ready to send.

    Raises:
        KeyError: unknown key, or a placeholder without a value (a programming error).
    """
    return TEMPLATES[key][language_of(language)].format_map(values)


# What a clinic's own wording may use (``days`` and ``copay`` only where the program knows them).
CUSTOM_PLACEHOLDERS: frozenset[str] = frozenset(
    {"first_name", "site_name", "site_phone", "drug", "days", "copay"}
)


def unknown_placeholders(template: str) -> list[str]:
    """Placeholders in a clinic template that midbot cannot fill (a malformed brace counts as ``{``)."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError:
        return ["{"]
    return [name for name in fields if name not in CUSTOM_PLACEHOLDERS]


def fill_custom(template: str, values: Mapping[str, object]) -> str | None:
    """Format a clinic-configured template with the known placeholders.

    Args:
        template: the clinic's wording, e.g. "Hi {first_name}, {site_name} here...".
        values: placeholder values (first_name, site_name, site_phone, drug, days, copay).

    Returns:
        The text, or None when the template uses an unknown placeholder or is malformed, so the caller
        falls back to the built-in wording instead of texting a patient a broken message.
    """
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError:
        _LOGGER.warning("clinic template is malformed; using the built-in wording")
        return None
    unknown = [name for name in fields if name not in values]
    if unknown:
        _LOGGER.warning("clinic template uses unknown placeholders %s; using the built-in wording", unknown)
        return None
    try:
        return template.format_map(dict(values))
    except (ValueError, IndexError, KeyError, AttributeError):
        _LOGGER.warning("clinic template could not be formatted; using the built-in wording")
        return None
