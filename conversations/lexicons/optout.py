"""Consent words: carrier keywords (STOP, START, HELP) and natural-language revocation, English and Spanish.

Patterns match the normalised text (lower case, no accents, shorthand expanded, tokens separated by single
spaces, clause punctuation as its own token).
"""

from __future__ import annotations

__all__ = [
    "AMBIGUOUS_COMPANIONS",
    "AMBIGUOUS_STARTS",
    "CLINICAL_PATTERNS",
    "FILLER_WORDS",
    "HELP_KEYWORDS",
    "KEEP_TEXTS_PATTERN",
    "OPT_IN_KEYWORDS",
    "OPT_IN_PATTERNS",
    "OPT_IN_WHEN_OPTED_OUT",
    "OPT_OUT_EXCLUSIONS",
    "OPT_OUT_KEYWORDS",
    "OPT_OUT_PATTERNS",
    "OPT_OUT_SCOPED",
    "CHANGED_MIND_PATTERN",
    "TAKE_BACK_PATTERN",
]

# A message that is one of these (fillers around it allowed) is an opt-out, as Twilio and CTIA treat them.
OPT_OUT_KEYWORDS: frozenset[str] = frozenset(
    {
        "stop",
        "stopall",
        "stop all",
        "stop everything",
        "unsubscribe",
        "unsubscribe me",
        "cancel",
        "cancel all",
        "end",
        "end all",
        "quit",
        "quit all",
        "revoke",
        "revoke consent",
        "optout",
        "opt out",
        "opt me out",
        "stop messages",
        "stop texts",
        "stop texting",
        "stop messaging",
        "stop sending",
        "remove me",
        "remove",
        "remove my number",
        "unsub",
        "stop stop",
        "stop now",
        "stop please",
        # STOP mistyped on a small keyboard, or said the Spanish way ("estop"): alone, nothing else is meant
        "stoo",
        "stpo",
        "sotp",
        "stopp",
        "stoppp",
        "sstop",
        "stp",
        "stopt",
        "srop",
        "dtop",
        "stio",
        "stoip",
        "estop",
        "estopp",
        "eztop",
        # Spanish
        "alto",
        "parar",
        "detener",
        "detente",
        "cancelar",
        "baja",
        "de baja",
        "darme de baja",
        "dar de baja",
        "dame de baja",
        "denme de baja",
        "no mas mensajes",
        "no mas textos",
        "alto a los mensajes",
        "desuscribir",
        "desuscribirme",
    }
)
# Words that may surround a keyword without changing it: "STOP please", "stop!!", "alto por favor".
FILLER_WORDS: frozenset[str] = frozenset(
    """
    please now thanks thank you ok right away immediately asap as soon possible just all everything
    gracias por favor ya ahora todo todos ! . , ; yes si i said dije already again sir maam
    """.split()
)
# Stop-like first words: a short message opening with one, that no rule explains, is ambiguous.
# Words that may stand beside a stop-like word in an ambiguous message ("stop it", "can I stop?").
AMBIGUOUS_COMPANIONS: frozenset[str] = frozenset(
    """
    it this that these them those can i should do please now everything todo ya eso esto esta just ok you
    0 1 2 3 4 5 6 7 8 9
    """.split()
)
# Opt-out words about something other than the texts ("unsubscribe me from auto refill").
OPT_OUT_EXCLUSIONS: tuple[str, ...] = (
    r"\b(?:from|of|off|out of) (?:the |my |this |your )?(?:auto ?refills?|autorefill|automatic (?:refills?|deliveries"
    r"|shipments?)|auto ?ship\w*|copay (?:program|card|assistance)|assistance program|program|deliver(?:y|ies)"
    r"|mail order|refills?|the refill program|shipments?)\b",
)
# Texts about a medicine the patient no longer takes ("stop the reminders for my old med"): not a revocation of
# consent, a refill declined.
OPT_OUT_SCOPED: str = (
    r"\b(?:texts?|messages?|reminders?|notifications?|alerts?|mensajes?|recordatorios?|avisos?) (?:for|about|on"
    r"|of|regarding|de|sobre|para) (?:my |the |this |that |his |her |mi |el |la |los |las |su )?(?:old|other"
    r"|previous|former|discontinued|viej[oa]s?|anterior|otr[oa])\b"
)
AMBIGUOUS_STARTS: frozenset[str] = frozenset(
    """
    stop stopall quit cancel end alto parar para detener cancelar basta unsubscribe
    """.split()
)

_MESSAGES = (
    r"(?:text|texts|texting|message|messages|messaging|text messages|sms|reminders?|notifications?|alerts?"
    r"|msgs?|contact|contacting|calls|calling me|check ins|checkins|check in texts|check in messages|surveys?"
    r"|communications?|text communications?)"
)
_ES_MESSAGES = r"(?:mensajes?|mensajitos|textos?|recordatorios?|avisos?|sms|notificaciones)"

# Natural-language revocation (FCC 2024: "any reasonable means").
OPT_OUT_PATTERNS: tuple[str, ...] = (
    rf"\b(?:stop|quit|cease|halt|end|pause|discontinue|cancel|cut out|cut off|knock off|turn off|shut off|nix)\b"
    rf"(?: \w+){{0,4}} {_MESSAGES}\b",
    rf"\bno (?:more|further) (?:\w+ )?{_MESSAGES}\b",
    r"\b(?:stop|quit|cease|halt) (?:sending|texting|messaging|contacting|bothering|calling|spamming)(?: me)?"
    r"(?: (?:these|this|them|that|now|please|anymore|any more|already|here|everything|again))*\s*(?:[,.!;]|$)",
    r"\bunsubscribe\b",
    r"\bunsub\b",
    r"\bopt (?:me )?out\b",
    r"\boptout\b",
    r"\b(?:revoke|revoking|withdraw|withdrawing|retract|retracting|rescind|rescinding) (?:my |all |any )?(?:consent"
    r"|permission|authorization|agreement)\b|\b(?:retiro|revoco|cancelo|quito) (?:mi )?(?:consentimiento|autorizacion"
    r"|permiso)\b",
    r"\b(?:take|remove|delete|drop|get|erase|cross) (?:me|my (?:cell |phone |mobile )?number|this number"
    r"|my name|us|my (?:cell|phone))(?: \w+){0,3} (?:off|from|out of)(?: (?:your|the|this|that|my|all|these|ur|any))?"
    r"(?: \w+)? (?:list|lists|texts|messages|texting|text|messaging|sms|reminders|system|contacts|database)\b",
    r"\b(?:take|remove|delete|drop|erase|cross) (?:me|my (?:cell |phone |mobile )?number|this number|my name|us)"
    r"(?: \w+){0,2} (?:off|from|out)\s*(?:[.!,]|please|$)",
    # a relative: "grandma doesn't read texts, take her number off and just call her"
    r"\b(?:take|remove|delete|drop|erase|cross) (?:her|his|their|the|mom s|dad s|\w+ s) (?:cell |phone |mobile )?number"
    r" (?:off|out)\b",
    r"\b(?:remove|delete|erase) (?:me|my (?:cell |phone |mobile )?number|this number)\s*(?:[.!,]|please|$)",
    r"\b(?:dont|do not|never|stop|quit) (?:ever )?(?:text|message|contact|txt|sms|bother)(?:ing)? me\b",
    r"\b(?:dont|do not|never|stop|quit) (?:ever )?send(?:ing)? me (?:any )?(?:more |other )?(?:\w+ )?(?:texts|messages|text"
    r"|reminders|anything|sms|these|this stuff)\b",
    r"\b(?:dont|do not) (?:text|message|contact|txt|send) (?:this|my) (?:number|phone)\b",
    r"\b(?:dont|do not|no longer|dont really|never) (?:want|wish|need|like)(?: to (?:get|receive|have))?"
    r"(?: (?:these|those|your|any|the|this|such|more|any more))?(?: \w+)? "
    r"(?:texts|messages|text messages|reminders|msgs|notifications|alerts|texting)\b(?! to (?:stop|end|cease))",
    r"\bleave me alone\b",
    # "I'd rather you not message me anymore", "please no send me message again", "favor de no enviar más…"
    r"\b(?:rather|prefer) (?:you|u|yall|that you|if you) (?:not|didnt|did not|dont|wouldnt|would not|stop|no longer)"
    r" (?:message|text|contact|send|txt|bother|email|remind)\w*\b",
    r"\b(?:no|not|dont|do not|never) (?:send|text|message|sms|txt) (?:me|us|to me) (?:any )?(?:more )?(?:\w+ )?(?:messages?"
    r"|texts?|sms|reminders?)? ?(?:again|anymore|any more|no more)\b",
    rf"\b(?:favor de|por favor|porfa) no (?:enviar|mandar|escribir|textear)(?:me|nos|le)? (?:mas )?(?:\w+ )?{_ES_MESSAGES}\b",
    # "so we'd like the texts to stop now", "queremos que ya paren los mensajes"
    rf"(?<!\bdont )(?<!\bnot )(?<!\bnever )\b(?:like|want|need|wish|prefer|asking for) (?:the |these |your |all |all the"
    rf" |those |my |her |his )?(?:\w+ )?{_MESSAGES} to (?:stop|end|cease|be stopped|be turned off)\b",
    rf"(?<!\bno )\b(?:quiero|queremos|quisiera|quisieramos|me gustaria|nos gustaria|pido|pedimos|favor de hacer) que"
    rf" (?:ya )?(?:paren|dejen|terminen|se acaben|cesen|se detengan|suspendan) (?:de llegar )?(?:los |las |estos |sus |esos )?"
    rf"{_ES_MESSAGES}\b",
    r"(?:^|[,.!?;]|\b(?:but|just|so|now|pls|please|ok|okay|yall|you|u|lol|then))\s*stop\s*[.!]*$",  # "idk who this is but STOP"
    # a death told by family, with the texts still coming: "my wife died in march, why are you still texting her"
    r"\b(?:died|passed away|passed on|fallecio|murio|se nos fue)\b(?: \S+){0,12} (?:still (?:texting|messaging|sending)"
    r"|take (?:it|her|him|this number|the number) off|stop (?:texting|sending|messaging)|siguen (?:mandando|escribiendo)"
    r"|quiten (?:el|este) numero)\b",
    r"\bwant(?: to be)? off (?:of )?(?:this|the|your|these|ur)(?: \w+){0,2} (?:text|texts|texting|messages|messaging|sms)"
    r"(?: (?:thing|list|program|system|stuff))?\b",
    r"\b(?:d c|dc|d\/c) (?:all )?(?:the )?(?:sms|texts?|text messages|texting|messages)\b",  # clinical shorthand
    r"\bque (?:ya )?no me (?:enviaran|mandaran|escribieran|textearan|contactaran|enviaran)\b",
    r"\b(?:id|i would|i d) (?:rather|prefer)(?: to)? not (?:get|receive|have)(?: (?:these|those|your|the|any|such|any more))?"
    r"(?: \w+)? (?:texts|messages|text messages|reminders|msgs)\b",
    r"\b(?:stop|quit) (?:asking|bugging|pestering|hounding) (?:me|us|her|him)\b|\bdejen de preguntar(?:me)?\b",
    r"\b(?:stop|quit) asking(?: me)?(?: (?:already|anymore|any more|please|so much))?\s*(?:[.!,]|$)",
    r"\b(?:dont|do not|no longer) (?:want|need)(?: to (?:get|receive|answer))? (?:these|those|your|any more|the|any)"
    r"(?: \w+){0,2} (?:questions|check ?ins?|surveys)(?: \w+){0,2} (?:anymore|any more|no more)\b",
    r"\bno (?:need|reason) (?:for you )?to (?:text|message|contact|txt|remind) (?:me|us|this number|her|him)(?: \w+)?"
    r" ?(?:anymore|any more|again|now|no more)?\b",
    r"\bif (?:you|u|yall|you guys) (?:text|message|txt|contact) (?:me|us|this number) (?:again|one more time)\b",
    r"\bun ?-?enroll\w*\b|\bdesinscrib\w*|\bdesafili\w*",
    r"\b(?:want|get me|take me|put me) off (?:of )?(?:this|the|your|ur) (?:\w+ )?list\b",
    r"\b(?:no longer|dont|do not|never) (?:want|wish|need) to (?:get|receive|see) (?:these|them|those|this|any more"
    r"|anymore|any of these|any of this)(?: (?:anymore|any more|again|please|thanks|thank you|now))*\s*(?:[.!]|$)",
    r"\b(?:harass\w*|spam\w*|scam\w*|annoying|bothering me)\b(?: \w+){0,4} (?:stop|quit|unsubscribe)\b"
    r"|\b(?:stop|quit)\b(?: \w+){0,4} (?:harass\w*|spam\w*|annoying me|bothering me)\b",
    rf"\b(?:done|finished|through) with (?:these|the|your|all|all these|all the|this)(?: \w+)? {_MESSAGES}\b",
    # "Not interested in the financial assistance messages", "no me interesan esos mensajes del copago"
    rf"\b(?:not|no longer|arent|never) interested in (?:the |these |those |your |any |receiving |getting |any more )*"
    rf"(?:\w+ ){{0,3}}{_MESSAGES}\b|\bno (?:me )?interesan? (?:los |las |estos |esos |sus |mas )?(?:\w+ )?{_ES_MESSAGES}\b",
    rf"\b(?:enough|too many|tired of|sick of|fed up with|annoyed by|hate) (?:with |of )?(?:these|the|your|all|all these"
    rf"|all the|this|getting)?(?: \w+)? {_MESSAGES}\b",
    r"\b(?:lose|delete) my number\b",
    r"\bsick of (?:these|your|the) (?:texts|messages|reminders)\b",
    r"\bplease stop\s*[.!]*$",
    r"^(?:stop|unsubscribe|quit)\b(?: [.!,])+ ?(?:i|this|you|im|these|wrong|not)\b",
    # Spanish
    r"\bno me (?:escriban|escriba|textee|texteen|contacten|molesten)\b|\bno me (?:manden|envien|mande|envie)"
    r"\s*(?:[.!,]|$|por favor|nada|mas)",
    # "ya no me manden eso del copago": that kind of text, named by its topic (a scoped opt-out)
    r"\b(?:ya )?no me (?:manden|envien|mande|envie|sigan mandando|sigan enviando) (?:mas )?(?:eso|esto|esos|estos|esas"
    r"|estas|lo) (?:del|de la|de los|de las|sobre)\b|\bya no me (?:manden|envien|mande|envie) (?:eso|esto|esos|estos|nada)"
    r"\s*(?:[.!,]|$|por favor)",
    r"\bno (?:me )?(?:\w+ )?(?:envien|manden|mande|envie|escriban|escriba|textee|texteen|llamen|mandes|envies|escribas"
    r"|textees|llames)(?: \w+)?(?: mas| nada)\b",
    rf"\bno (?:me )?(?:envien|manden|mande|envie|escriban|escriba|esten mandando|sigan mandando)"
    rf" (?:los |las |sus |mas |estos |esos |esas |tantos )?{_ES_MESSAGES}\b",
    rf"\b(?:no|ya no) (?:quiero|deseo|necesito|me interesa) (?:recibir |seguir recibiendo |que me (?:envien|"
    rf"manden) )?(?:mas )?(?:estos |sus |los |esos |ningun |ningunos )?(?:\w+ )?{_ES_MESSAGES}\b",
    r"(?<!\bno quiero que )(?<!\bno queremos que )(?<!\bno )"
    r"\b(?:detengan|paren|pare|detenga|suspendan|cancelen|quiten|cancele|suspenda) (?:los |estos |sus |mis |todos los )?"
    r"(?:mensajes|textos|recordatorios|mensajitos)\b",
    r"\bdejen de (?:escribirme|mandarme|enviarme|textearme|mandar|enviar|escribir|molestar|molestarme)\b",
    r"\bdeje de (?:escribirme|mandarme|enviarme|textearme|molestarme)\b",
    # tú and vos imperatives ("para de mandarme mensajes", "pará de escribirme", "dejá de molestarme")
    r"\b(?:para|deja|paren|pare|dejen|deje) de (?:escribirme|mandarme|enviarme|textearme|molestarme|mandar|enviar"
    r"|escribir|textear)(?: (?:los|las|sus|mas|tantos|estos|esos|esas))? (?:mensajes?|mensajitos|textos?|sms|recordatorios?"
    r"|avisos?|notificaciones|cosas|eso|esto)\b|\b(?:para|deja) de (?:escribirme|mandarme|enviarme|textearme|molestarme)"
    r"\s*(?:[.!,]|$|ya|por favor|en serio|porfa)",
    rf"\b(?:pare|paren|deje|dejen|dejar|parar) de (?:mandar|enviar|escribir|textear|mandarme|enviarme)(?: (?:los|las|sus|mas"
    rf"|tantos|estos))? {_ES_MESSAGES}\b",
    r"\b(?:no|ya no) quiero (?:las |los |estas |esas |sus |mas )?(?:preguntas|encuestas)\b(?! (?:sobre|de) (?:la|el|mi)"
    r" (?:medicina|receta|pastilla))",
    r"\b(?:quiten|quite|borren|borre|eliminen|elimine|saquen|saque) (?:mi numero|mi telefono|mi nombre|me)\b",
    r"\b(?:quitenme|sacame|saquenme|borrenme|eliminenme)\b",
    r"\b(?:darme|dar|denme|dame|doy|darse) de baja\b",
    rf"\bno mas {_ES_MESSAGES}\b",
    r"\b(?:no|ya no) quiero que (?:\w+ ){0,3}me (?:manden|envien|escriban|mande|envie|escriba|textee\w*|contacten"
    r"|molesten) (?:nada|mas)? ?(?:por|de) (?:texto|textos|mensaje|mensajes|sms|celular)\b",
    r"\b(?:no|ya no) quiero que me (?:manden|envien|escriban|mande|envie|escriba|textee\w*|contacten|molesten)"
    r"(?: (?:mas|nada|ya))*\s*(?:[.!,]|$|por favor|gracias)",
    rf"\b(?:alto|basta|ya basta) (?:a los |con los |de )?{_ES_MESSAGES}\b",
    r"\bdejenme en paz\b",
    # a relative passing it on: "dice que ya no quiere que le manden mensajes al celular"
    r"\b(?:no|ya no) (?:quiere|quieren|desea|desean) que (?:le |les |me |nos )?(?:manden|envien|escriban|mande|envie"
    r"|sigan mandando|sigan enviando|textee\w*)(?: mas)? (?:mensajes|textos|recordatorios|nada|al celular|sms)\b",
    r"\b(?:no|ya no) (?:necesito|necesitamos|quiero|queremos|hace falta) que (?:me |nos |le )?(?:sigan|continuen)"
    r" (?:escribiendo|mandando|enviando|textiando|texteando|contactando)\b",
    r"\bno me (?:sigan|esten) (?:mandando|manando|enviando|escribiendo|textiando|texteando)\b",
    rf"\b(?:demasiados|tantos|muchos) {_ES_MESSAGES}\b(?: \w+){{0,3}} (?:paren|basta|alto|dejen|ya no)\b",
    r"\bcancelar (?:los |mis |estos )?(?:mensajes|textos|recordatorios|suscripcion)\b",
    r"^alto\s*[,.!]",
)

OPT_IN_KEYWORDS: frozenset[str] = frozenset(
    "start|unstop|optin|opt in|opt me in|subscribe|resubscribe|resume|restart|start again|"
    "start messages|start texts|comenzar|iniciar|empezar|reanudar|alta|unstop me|start over|resubscribe me".split("|")
)
# Twilio also treats YES as opt-in, but only a patient who opted out means that by it.
OPT_IN_WHEN_OPTED_OUT: frozenset[str] = frozenset({"yes", "y", "si", "yes please", "si por favor", "ok"})
OPT_IN_PATTERNS: tuple[str, ...] = (
    rf"\b(?:start|resume|restart|continue|turn on|begin) (?:\w+ ){{0,2}}?{_MESSAGES}\b(?: \w+){{0,3}} again\b",
    r"\b(?:start|resume|restart|begin) (?:sending|texting|messaging|sending me|texting me)\b",
    rf"\bresume (?:the |my )?{_MESSAGES}\b",
    rf"\b(?:turn|switch|put) (?:my |the )?{_MESSAGES} back on\b|\b(?:turn|switch|put) (?:them|those|these|it) back on\b",
    rf"\b(?:turn|switch) (?:back )?on (?:my |the )?{_MESSAGES}\b",
    r"\b(?:want|like|wish) to (?:get|receive|start getting|start receiving) (?:your |the |my |these )?"
    r"(?:texts|messages|text messages|reminders)\b",
    r"\b(?:want|like) (?:the |my |your )?(?:texts|messages|reminders) (?:again|back)\b",
    r"\b(?:still|do|really) (?:want|need) (?:the |my |your |these |those )?(?:texts|messages|reminders|text messages)\b",
    rf"\b(?:todavia|aun|si) (?:quiero|necesito) (?:los |mis |sus )?{_ES_MESSAGES}\b",
    r"\b(?:want|like|need) (?:the |my |your |these |those )?(?:texts|messages|reminders)\s*(?:[.!,]|$)",
    rf"(?<!\bno )(?<!\bnot )(?<!\bdont )(?<!\bnever )\b(?:send|text) (?:me )?(?:the |my )?{_MESSAGES} again\b|\b(?:si )?(?:mandenme|envienme|sigan mandandome|sigan"
    rf" enviandome) (?:los |mis |sus )?{_ES_MESSAGES}\b|\b(?:vuelvan|vuelva|volver) a (?:llegar|llegarme|mandarme|enviarme)"
    rf"(?: \w+){{0,2}} {_ES_MESSAGES}\b",
    r"\b(?:sign|opt) me (?:back )?(?:up|in)\b|\b(?:subscribe|add|put|sign) me back\b|\bresubscribe me\b",
    r"\bresubscribe\b",
    r"^(?:i want to |i would like to |please )?(?:receive|get|start getting|start receiving) (?:the |my |your )?"
    r"(?:texts|messages|reminders) again\b",
    rf"\b(?:quiero|deseo|me gustaria) (?:volver a )?(?:recibir|tener) (?:los |sus |mis )?(?:\w+ )?{_ES_MESSAGES}\b",
    r"\b(?:vuelvan|pueden volver|volver) a (?:mandarme|enviarme|escribirme|mandar|enviar)\b",
    rf"\b(?:activen|reactiven|reanuden|activar|reactivar|reanudar|prender|prendan) (?:otra vez |de nuevo )?"
    rf"(?:los |mis |sus )?{_ES_MESSAGES}\b",
    rf"\b(?:reactivate|reenable|re enable|reactivar) (?:my |the )?{_MESSAGES}\b",
    r"\b(?:can|could|may) (?:i|we) (?:please )?(?:get|have|start getting|receive) (?:the |my |your |those )?(?:texts|messages"
    r"|reminders|text messages) (?:again|back)\b",
)

_BY_MISTAKE = (
    r"(?:by (?:mistake|accident)|accidentally|mistakenly|sin querer|por error|por equivocacion|por accidente"
    r"|(?:didnt|did not|never) mean to|no (?:quise|queria)|me equivoque)"
)
_STOPPED = r"(?:unsubscrib\w*|opt(?:ed)? (?:me )?out|optout|stop|stopped|alto|baja|cancel\w*)"
# Taking back an opt-out ("I hereby rescind my prior opt-out", "cancel my STOP", "ignoren mi baja"), or saying it
# was a mistake ("my wife unsubscribed me by mistake", "didn't mean to unsubscribe", "me equivoqué al poner stop";
# the mistake must be the stop itself: "didn't mean to be rude, but don't text me again" stays an opt-out): an
# opt-in, though it holds opt-out words.
TAKE_BACK_PATTERN: str = (
    r"\b(?:rescind\w*|revok\w*|withdraw\w*|retract\w*|cancel\w*|undo\w*|reverse|reversing|take back|ignore|disregard)"
    r" (?:my |the |that |this |our )?(?:prior |previous |earlier |last |old |recent )?(?:opt ?out|stop|unsubscribe"
    r"|request to (?:stop|opt out|unsubscribe)|stop request)\b|\b(?:cancelo|anulo|ignoren|ignore|olviden) (?:mi |el |lo"
    r" del )?(?:baja|alto|stop)\b"
    rf"|\b{_BY_MISTAKE}(?: [a-z]\w*){{0,2}} {_STOPPED}\b|\b{_STOPPED}(?: [a-z]\w*){{0,2}} {_BY_MISTAKE}\b"
)
# A change of mind: with a wish that the texts go on, an opt-in ("me arrepentí, quiero que me sigan mandando…").
CHANGED_MIND_PATTERN: str = (
    r"\b(?:changed my mind|change of heart|on second thought|thought better of it|i regret|regret (?:it|that|stopping)"
    r"|me arrepenti\w*|cambie de (?:opinion|idea|parecer)|pensandolo bien|lo pense mejor|mejor si)\b"
)

# A wish that the texts go on ("I don't want the texts to stop", "please don't stop the reminders", "no dejen de
# mandarme los recordatorios"): not a revocation, though it holds stop words.
KEEP_TEXTS_PATTERN: str = (
    r"\b(?:dont|do not|never|wouldnt|would not) (?:want|need|like) (?:the |these |my |your |those )?(?:\w+ )?(?:texts|messages"
    r"|reminders|check ins|alerts) to (?:stop|end|go away)\b|\b(?:dont|do not|please dont|never) (?:stop|end|cancel|quit)"
    r" (?:the |my |your |sending |texting )?(?:\w+ )?(?:texts|messages|reminders|check ins|me)\b"
    r"|\bno (?:lo |la |los |las |me |nos |le )?(?:paren|dejen|pares|dejes|deje|pare) de (?:mandar|enviar|escribir)\w*\b"
    r"|\bsigan (?:mandando|enviando|escribiendo)\w*\b|\bkeep (?:sending|texting|the texts|the reminders)\b"
    r"|\bno (?:quiero|queremos) que (?:paren|dejen) (?:los|las|sus|de)\b"
    r"|\b(?:dont|do not) want (?:you|them|y all|yall) to stop\b"
    r"|\bno (?:me |nos |le )?(?:paren|detengan|quiten|cancelen|suspendan|corten) (?:los |las |mis |sus )?(?:recordatorios"
    r"|mensajes|textos|avisos)\b"
)

HELP_KEYWORDS: frozenset[str] = frozenset(
    {"help", "info", "information", "ayuda", "informacion", "help please", "help info", "more info"}
)

# Words that put a stop-like word in a clinical sense ("stop taking it", "quit the blood thinner").
CLINICAL_PATTERNS: tuple[str, ...] = (
    r"\b(?:taking|take|took|tomar|tomarla|tomarlo|tomando)\b",
    r"\b(?:pills?|tablets?|capsules?|medicine|drug|dose|doses|dosis|pastillas?|medicina|tratamiento|chemo"
    r"|treatment|therapy|refill|prescription|receta|resurtido|blood thinner|it because|the \w+ (?:pill|med))\b",
    r"\b(?:pain|hurt|hurts|nausea|rash|diarrhea|vomiting|bleeding|dolor|diarrea|sangrado|itching|cough)\b",
    r"\b(?:surgery|procedure|cirugia|operacion|smoking|drinking|coffee|alcohol|eating|fumar)\b",
    r"\b(?:voicemail|voice mail|buzon|hold|on hold|busy signal)\b",  # "stop sending me to voicemail": call me
)
