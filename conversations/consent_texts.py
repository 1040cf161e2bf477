"""Texts of the consent keywords (STOP, START, HELP), the unknown-sender reply and the STOP clarification.

CTIA asks a HELP reply to name the program and business, give a phone number, the message frequency,
"Msg & data rates may apply" and how to stop; a STOP reply confirms that no further texts will come.
"""

from __future__ import annotations

__all__ = ["TEXTS", "TOPICS", "render"]

# How a program-scoped opt-out names what stops (conversations.scope kinds), per language.
TOPICS: dict[str, dict[str, str]] = {
    "copay_assistance": {"en": "copay help", "es": "ayuda con el copago"},
    "side_effect_checkin": {"en": "check-in", "es": "como se siente"},
    "refill_reminder": {"en": "refill reminder", "es": "recordatorios de resurtido"},
    "new_start": {"en": "welcome", "es": "bienvenida"},
    "abandonment_recovery": {"en": "pickup reminder", "es": "recordatorios para recoger su medicina"},
}

TEXTS: dict[str, dict[str, str]] = {
    "opt_out_confirm": {
        "en": "{site_name}: You are unsubscribed and will get no more texts from us. Reply START to resubscribe. "
        "Questions? Call {site_phone}.",
        "es": "{site_name}: Ya no recibira mas mensajes de nosotros. Responda START para volver a recibirlos. "
        "¿Preguntas? Llame al {site_phone}.",
    },
    "opt_out_program_confirm": {
        "en": "{site_name}: OK, no more {topic} texts. You will still get your other pharmacy texts. "
        "To stop all texts, reply STOP.",
        "es": "{site_name}: Listo, ya no le mandaremos mensajes sobre {topic}. Seguira recibiendo los demas "
        "mensajes de la farmacia. Para no recibir ninguno, responda ALTO.",
    },
    "opt_in_confirm": {
        "en": "{site_name}: You are subscribed again to pharmacy texts. Reply HELP for help, STOP to opt out.",
        "es": "{site_name}: Volvera a recibir mensajes de la farmacia. Responda AYUDA para ayuda, ALTO para "
        "cancelar.",
    },
    "help": {
        "en": "{site_name}: texts about your refills and how you feel, a few a month. Call {site_phone} "
        "for help. Msg & data rates may apply. Reply STOP to opt out.",
        "es": "{site_name}: mensajes de la farmacia sobre sus resurtidos y como se siente, pocos al mes. Llame "
        "al {site_phone}. Pueden aplicar tarifas de mensajes y datos. Responda ALTO para cancelar.",
    },
    "stop_clarify": {
        "en": "{site_name}: Reply STOP to stop all texts from us. If you meant your medicine, a pharmacist will "
        "text you back.",
        "es": "{site_name}: Responda ALTO para no recibir mas mensajes. Si se referia a su medicina, un "
        "farmaceutico le respondera.",
    },
    "unknown_sender": {
        "en": "{site_name}: This number is not monitored for you. Please call your clinic at {site_phone}. "
        "If this is an emergency, call 911.",
        "es": "{site_name}: Este numero no esta registrado para usted. Llame a su clinica al {site_phone}. "
        "En una emergencia llame al 911.",
    },
    "media_ack": {
        "en": "{site_name}: We got your picture. A pharmacist will look at it and text you back.",
        "es": "{site_name}: Recibimos su imagen. Un farmaceutico la revisara y le respondera.",
    },
    "handed_to_person": {
        "en": "{site_name}: We got your message. A pharmacist will text you back soon. "
        "If this is an emergency, call 911.",
        "es": "{site_name}: Recibimos su mensaje. Un farmaceutico le respondera pronto. "
        "Si es una emergencia, llame al 911.",
    },
}


def render(key: str, language: str, **values: str) -> str:
    """The text for ``key`` in the patient's language (English when there is no translation)."""
    texts = TEXTS[key]
    return texts.get(language, texts["en"]).format(**values)
