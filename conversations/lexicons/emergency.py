"""Red flags that make a text an emergency (call now or 911), English and Spanish, per DOMAIN.md.

Patterns match the normalised text. Each has a canonical symptom name for the care team; a negated mention
("no chest pain") does not count. Fever is decided on the number when one is given (site threshold, default
100.4 °F / 38 °C); "fever" or "chills" without a number counts, since the patient is on chemotherapy.

Beside the phrase patterns, concept groups (_CONCEPTS) pair a body part or system with an alarm cue in the same
clause ("coughed up a whole bunch of blood", "hard to wake", "tongue got so thick"), with stems for English and
Spanish inflections; a negator between the two ("lips are not swollen") voids the pair, while a negation that is
the alarm itself ("not breathing well", "no despierta") is a cue.
"""

from __future__ import annotations

__all__ = [
    "DESPAIR_PATTERN",
    "EMERGENCY_EXCLUSIONS",
    "PAST_EVENT_PATTERN",
    "RESOLVED_EVENT_PATTERN",
    "EMERGENCY_PATTERNS",
    "FEVER_THRESHOLD_F",
    "FEVER_WORDS",
    "NON_SYMPTOM_EMERGENCIES",
    "TEMPERATURE_CUES",
]

FEVER_THRESHOLD_F = 100.4

_PERSON = r"(?:my|the|his|her|their|mi|su|el|la)"
_STOP = r"(?:stop|stopping|stopped|quit|end|ending|slow down|go away|let up)"
_NOT = (
    r"(?:wont|will not|doesnt|does not|cant|can not|isnt|is not|not|hasnt|has not|didnt|wouldnt|never|still)"
)

# Words that may not sit between the two halves of a concept ("lips are not swollen", "stool has no blood").
_GAP = (
    r"(?: (?!(?:no|not|never|nor|ni|sin|without|nunca|nothing|nada|isnt|arent|wasnt|werent|doesnt|dont|didnt"
    r"|hasnt|havent)\b)\w+)"
)
_CHEST_BAD = (
    r"(?:pain\w*|pressure|tight\w*|heav\w*|hurt\w*|ache\w*|aching|squeez\w*|crush\w*|burn\w*|stab\w*|sharp"
    r"|discomfort|weight|elephant|band|killing|dolor\w*|duele|presion|opresion|apret\w*|apriet\w*|pesad\w*|ardor|punzada"
    r"|aplast\w*|punza\w*|pica(?:zo|da)s?|peso|cierra|cerrado)"
)
_BREATH = r"(?:breath|breathe|breathing|breaths|breeding|breathin|brething|breething|air|respirar|respiro|respira|aire|respiracion|respirando)"
_BREATH_BAD = (
    r"(?:cant|can not|could not|couldnt|hard|harder|trouble|short|shortness|struggl\w*|difficult\w*|catch|barely"
    r"|labored|gasp\w*|full|enough|no puedo|no puede|me cuesta|me falta|falta|dificultad|sin|winded|heavy|bad|worse"
    r"|shallow|rapid|fast|weird|funny|noisy|off|scary|slow|slowly|strange|odd|raspy|rattl\w*)"
)


def _terms(words: str) -> str:
    """An alternation of space-separated terms: a trailing * takes any ending ("swell*"), _ joins a phrase."""
    parts = [
        w.replace("_", " ")[:-1] + r"\w*" if w.endswith("*") else w.replace("_", " ") for w in words.split()
    ]
    return "(?:" + "|".join(sorted(parts, key=len, reverse=True)) + ")"


def _near(anchors: str, cues: str, window: int, *, cue_first: bool = False) -> str:
    """A body part or system (anchors) and an alarm cue in the same clause, at most ``window`` words apart."""
    a, c = _terms(anchors), _terms(cues)
    forward = rf"\b{c}{_GAP}{{0,{window}}} {a}\b"
    return forward if cue_first else rf"{forward}|\b{a}{_GAP}{{0,{window}}} {c}\b"


# Concept groups: (red flag, anchor terms, alarm cues, window, cue first only). Either order matches unless
# the cue must come first; a negator between the two, or before the first, voids the hit.
_CONCEPTS: tuple[tuple[str, str, str, int, bool], ...] = (
    (
        "fainting",
        "wake* waking awake arous* despert* despiert*",
        "hard harder trouble difficult* barely cant couldnt wont wouldnt unable not_able no_puedo no_puede"
        " cuesta costo dificil trabajo",
        2,
        True,
    ),
    (
        "bleeding",
        "blood* bleed* bled sangr*",
        "pee pees peeing peed urin* orin* pis cough* tos tosi* tosiendo vomit* throw* threw puk* spit* spat"
        " escup* devolv* stool* poop* bm bms toilet bowl clot* coagul* cup* cupful handful bunch lot lots"
        " much heavy heavily soak* pour* gush* spurt* chorro* charco* nonstop inodoro taza cuajo* bright_red"
        " mucha mucho",
        4,
        False,
    ),
    (
        "bleeding",
        "stool* poop* pooping pooped bm bms bowel_movement* popo heces caca excremento* evacua* del_bano",
        "black tar tarry negr* chapopote alquitran maroon bloody blood sangr*",
        4,
        False,
    ),
    (
        "allergic_reaction",
        "lip lips tongue* throat* face mouth eyelid* labio* lengua* garganta* cara boca parpado* jeta trompa",
        "swell* swollen puff* thick* huge bigger getting_big got_big so_big blow* blew hinch* inflam* grues*"
        " gord*",
        3,
        False,
    ),
    (
        "chest_pain",
        "chest pecho",
        "sitting standing weight elephant press* push* squeez* crush* tight* heavy heav* aprieta aprietan"
        " apretado apretando oprim* presion pesa pesado",
        4,
        False,
    ),
    (
        "bleeding",
        "vomit* throw*_up throwing_up threw_up puk* vomito* devolv* arroj*",
        "black dark_brown brown coffee bloody blood* sangr* negr* cafe",
        6,
        False,
    ),
    (
        "bleeding",
        "urine pee orina orin* pipi",
        "cola clot* coagul* bloody blood* red roja rojo sangr* pink",
        4,
        False,
    ),
    (
        "allergic_reaction",
        "throat* garganta*",
        "clos* cierr* cerr* tight* apret* apriet*",
        3,
        False,
    ),
    (
        "trouble_breathing",
        "breath* respir*",
        "isnt_good isnt_right isnt_normal not_good not_right not_normal doesnt_sound_right sounds_bad sounds_funny"
        " sounds_weird no_esta_bien no_es_normal",
        3,
        False,
    ),
    (
        "allergic_reaction",
        "hives ronchas urticaria",
        "swell* swollen hinch* breath* respir* throat garganta wheez*",
        6,
        False,
    ),
    (
        "seizure",
        "jerk* twitch* thrash* sacud* convuls* stiff*",
        "all_over whole_body uncontrollab* todo_el_cuerpo sin_control cant_stop couldnt_stop wont_stop",
        3,
        False,
    ),
    (
        "head_injury",
        "fell fall falls fallen falling cayo caida cai",
        "head cabeza bleed* sangr* unconscious inconsciente confus* confundid* unresponsive isnt_moving"
        " not_moving wont_move hasnt_moved no_se_mueve stairs escaleras",
        5,
        False,
    ),
)
_CONCEPT_PATTERNS: tuple[tuple[str, str], ...] = tuple(
    (name, _near(anchors, cues, window, cue_first=first)) for name, anchors, cues, window, first in _CONCEPTS
)

EMERGENCY_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "bleeding",  # bleeding that won't stop, in the words LABELS.md gives ("no deja de sangrar")
        r"\b(?:no|nunca) (?:le |me |se le |se me |nos )?(?:deja|dejaba|para|paraba) de sangrar\b"
        r"|\bno (?:se )?(?:le |me )?(?:para|paraba|detiene|quita) (?:la |el )?(?:sangre|sangrado|hemorragia)\b"
        r"|\b(?:wont|will not|doesnt|does not|cant|cannot|can not|couldnt) (?:get (?:it|him|her) to )?stop"
        r" (?:the )?bleed\w*\b|\bbleeding (?:wont|will not|doesnt|does not|just wont) stop\b"
        # bleeding, then a few words on, that it cannot be stopped ("still bleeding, cant get it to stop")
        r"|\bbleed\w*(?: \S+){0,6} (?:cant|cannot|can not|couldnt|wont|will not) (?:get (?:it|him|her) to "
        r"|make (?:it|him|her) )?stop\b"
        r"|\bsangr\w*(?: \S+){0,6} (?:y )?no (?:puedo|podemos|pude|se|le|me)(?: \w+)? (?:parar\w*|detener\w*"
        r"|para|detiene|quita)\b",
    ),
    (
        "chest_pain",
        rf"\b(?:chest|pecho){_GAP}{{0,4}} {_CHEST_BAD}\b|\b{_CHEST_BAD}{_GAP}{{0,4}} (?:chest|pecho)\b",
    ),
    (
        "trouble_breathing",
        rf"\b{_BREATH_BAD}{_GAP}{{0,3}} {_BREATH}\b|\b{_BREATH}{_GAP}{{0,3}} {_BREATH_BAD}\b"
        r"|\b(?:lips|fingers|face|skin) (?:\w+ ){0,3}(?:blue|gray|grey)\b|\b(?:blue|purple) (?:lips|fingers)\b"
        r"|\blabios morados\b|\bse esta poniendo (?:azul|morad[oa])\b|\b(?:turning|turned|going|gone) (?:blue|gray|grey|purple)\b"
        r"|\b(?:gray|grey|pale|ashen) and (?:sweaty|clammy|cold)\b|\bse (?:puso|esta poniendo|le puso) (?:azul|morad[oa]|gris)\b"
        r"|^esta (?:azul|morad[oa])\b"
        r"|\bsob\b(?! story)",  # "short of breath" as patients text it (LABELS.md)
    ),
    (
        "chest_pain",
        rf"\bchest (?:pain|pains|pressure|tightness|tight|heaviness|heavy|hurts?|hurting|is hurting|"
        rf"feels (?:tight|heavy|like)|is (?:tight|killing me)|discomfort|squeez\w*|ache|aches)\b"
        rf"|\b(?:pain|pressure|tightness|heaviness|crushing|squeezing|burning|stabbing){_GAP}{{0,3}} "
        rf"(?:in|on|across) {_PERSON} chest\b|\b{_PERSON} chest (?:\w+ ){{0,2}}(?:hurts|is hurting|"
        rf"pain|tight)\b|\bheart attack\b|\bdolor(?:es)?(?: \w+){{0,2}} (?:de|en el|del) pecho\b"
        rf"|\b(?:me |le )?(?:duele|duela|dolia|esta doliendo)(?: \w+){{0,2}} (?:el )?pecho\b|\b(?:presion|opresion|apreton) (?:en|del) "
        rf"(?:el )?pecho\b|\bpecho apretado\b|\bataque al corazon\b|\binfarto\b|\bangina\b"
        rf"|\bheart (?:hurts|is hurting|pain|aches?|is aching)\b|\b(?:duele|dolor en|dolor de) (?:el |mi )?corazon\b",
    ),
    (
        "trouble_breathing",
        r"\bcant (?:\w+ )?(?:breathe|breath|catch (?:my|his|her) breath|get (?:enough )?(?:air|"
        r"(?:my|a) breath))\b|\b(?:trouble|hard|difficult\w*|struggling|problems?|hard time|"
        r"difficulty) (?:\w+ ){0,1}breath\w*|\bshort(?:ness)? (?:of|of the) breath\b|\bout of"
        r" breath\b|\bgasping\b|\bnot breathing\b|\bisnt breathing\b|\bstopped breathing\b"
        r"|\bwheez\w*|\bsuffocat\w*|\bchoking\b|\bno (?:puedo|puede) respirar\b|\bfalta (?:de )?"
        r"(?:el )?aire\b|\bme ahog\w*|\bahogando\b|\bdificultad para respirar\b|\bme cuesta(?: \w+)?"
        r" respirar\b|\bno me entra (?:el )?aire\b|\bsin aire\b|\bno respira\b|\bbreathless\w*"
        r"|\bcant breath\w*|\bair hunger\b|\bwinded\b|\blabored breathing\b|\brespiro mal\b|\bme asfixio\b"
        r"|\bse (?:me|le) (?:va|fue|iba) el aire\b|\brespir\w* (?:muy |bien |super )?(?:rapido|agitad[oa]|cortito|entrecortad[oa])\b"
        r"|\bbreathing (?:really |very |so |super )?(?:fast|hard|heavy|shallow)\b|\b(?:no puedo|no puede|me cuesta) jalar"
        r" (?:el )?aire\b",
    ),
    (
        "fainting",
        r"\bpass(?:ed|ing|es)? out\b|\bpast out\b|\bvahido\b|\bsoponcio\b|\bpasted out\b|\bwoke up on the (?:\w+ )?(?:floor|ground)\b"
        r"|\b(?:dont|do not|didnt|doesnt) (?:know|remember) how (?:i|he|she) got (?:there|here|on the floor)\b"
        r"|\bamaneci en el piso\b|\bme desperte en el piso\b|\bfaint\w*|\bblack(?:ed|ing|s)? out\b|\bblackout\w*|\bcollaps\w*"
        r"|\bunconscious\b|\b(?:wont|will not|doesnt|cant|not) wak\w* (?:up|him|her)\b|\bcant wake (?:him|"
        r"her|them)\b|\bunresponsive\b|\b(?:not|isnt|wont|is not|will not|stopped) respond\w*|\bdesmay\w*|\bperd\w* el conocimiento\b|\binconsciente\b"
        r"|\bno (?:despierta|reacciona|responde)\b|\b(?:cant|can not|couldnt|wont|unable to) stay awake\b"
        r"|\bno (?:se )?(?:puede|puedo) (?:mantener|quedar)(?:se|me)? despiert[oa]\b|\bkeeps? (?:nodding|passing) (?:off|out)\b|\bse (?:me )?(?:fue|va) el mundo\b|\bkeeled over\b"
        r"|\bdesvanec\w*|\b(?:legs|knees) (?:gave|give) (?:out|way)\b|\b(?:dropped|collapsed|fell|went down) (?:to|on) the"
        r" (?:floor|ground)\b|\bno contesta\b(?! (?:el|mi|su|los|las|sus|mis) )",
    ),
    (
        "stroke",
        r"\b(?:numb\w*|weak\w*|tingl\w*|drooping|paraly\w*|cant move)(?: \w+){0,2} (?:on )?(?:one|the left|the right|my"
        r" left|my right|his left|her left|his right|her right) side\b|\b(?:one|left|right) side of (?:my|his|her) (?:body"
        r"|face) (?:\w+ )?(?:is |went |feels )?(?:numb|weak|drooping|dead|paralyzed)\b|\bsudden (?:numbness|weakness)\b"
        r"|\b(?:se me|se le) (?:durmio|paralizo) (?:un lado|la mitad)\b|\b(?:cant|can not|couldnt|unable to) (?:move|feel"
        r"|lift|raise|use) (?:my|his|her) (?:left |right )?(?:arm|leg|hand|side)\b|\b(?:se (?:me|le) )?paraliz\w*(?: \w+){0,2}"
        r" (?:brazo|pierna|cara|mano|lado)\b|\bno (?:puede|puedo) mover (?:el|la|su|mi)"
        r" (?:brazo|pierna|mano|lado)\b",
    ),
    (
        "confusion",
        r"\bconfused\b|\bconfusion\b|\bdisoriented\b|\bdoesnt (?:know|recognize) (?:where|who|me|us|"
        r"anyone)\b|\bdoes not (?:know|recognize)\b|\bdoesnt make sense when (?:he|she) talks\b"
        r"|\bslurr\w*|\bdroop\w*|\bcant (?:talk|speak)(?: (?:right|properly|clearly|straight|well))?\b|\bstroke\b"
        r"|\bno (?:puede|puedo) hablar\b|\b(?:boca|cara) (?:chueca|caida|torcida)\b|\bse le (?:cae|cayo) la cara\b"
        r"|\bcrooked (?:face|mouth|smile)\b|\bface (?:is )?(?:drooping|crooked|numb on one side)\b"
        r"|\bconfundid[oa]\b|\bdesorientad[oa]\b|\bdesvari\w*|\b(?:habla|hablando) (?:arrastrad\w*|raro|sin sentido)\b"
        r"|\barrastra las palabras\b|\bno (?:me |nos |la |lo )?(?:reconoce|reconocia|reconocio)\b|\b(?:dice|dijo|decia|habla|hablaba|esta diciendo) cosas (?:raras|sin sentido|extranas|que no)\b|\bno sabe (?:donde|quien)\b|\bderrame\b"
        r"|\bhallucinat\w*|\balucin\w*|\bseeing things\b|\bhearing voices\b|\bviendo cosas\b"
        r"|\b(?:boca|cara)(?: \w+){1,3} (?:chueca|caida|torcida)\b"
        r"|\bembolia\b|\bout of it\b|\bnot making (?:any )?sense\b|\bmaking no sense\b|\bdelirious\b|\bdelir\w*"
        r"|\btalking (?:nonsense|gibberish|crazy|funny|weird|strange|out of (?:his|her) head)\b|\bdoesnt know (?:what"
        r" (?:day|year|month|time)|where (?:he|she) is|who (?:i|he|she|we) (?:am|is|are))\b|\bno sabe (?:que dia|en"
        r" que dia|que ano)\b|\b(?:dice|habla) (?:cosas )?(?:sin sentido|incoherencias|puras incoherencias)\b"
        r"|\b(?:dont|doesnt|does not|didnt) know where (?:he|she) (?:is|was|at)\b|\bkeeps? asking (?:me )?the same"
        r" (?:thing|question)s?(?: \w+){0,2} (?:over and over|again and again)\b|\bpregunta lo mismo una y otra vez\b"
        r"|\bse (?:le|me) torcio la (?:boca|cara)\b|\bse (?:le|me) chuequ\w* la (?:boca|cara)\b|\bno (?:le |se le )?entiendo"
        r" (?:lo que|nada de lo que|cuando) (?:habla|dice)\b|\bno (?:puede|puedo|pudo) (?:levantar|mover|alzar) (?:el|su|mi)"
        r" (?:brazo|pierna|mano)\b|\b(?:medio|la mitad del|un lado del) cuerpo\b(?: \w+){0,3}"
        r" (?:dormid[oa]|no (?:lo |la )?(?:siente|mueve|puede mover)|paralizad[oa]|adormecid[oa])\b|\bse (?:le|me)"
        r" (?:durmio|adormecio|paralizo) (?:medio cuerpo|la mitad del cuerpo|un lado|el lado \w+)\b"
        r"|\bse (?:le|me) traba(?:n)? (?:la lengua|las palabras)\b|\bno se le entiende(?: nada)?(?: (?:lo que|cuando)"
        r" (?:dice|habla))?\b|\bcant understand (?:what )?(?:he|she|him|her) (?:is saying|says|saying)\b"
        r"|\b(?:words|speech) (?:are |is )?(?:coming out )?(?:wrong|jumbled|garbled|mixed up)\b",
    ),
    (
        "allergic_reaction",
        rf"\b(?:lips?|tongue|throat|face|mouth|eyelids?){_GAP}{{0,3}} (?:swell\w*|swollen|clos\w*"
        rf"|tight\w*|puff\w*|blow\w* up)\b|\b(?:swell\w*|swollen|puffy|puffing){_GAP}{{0,3}} "
        r"(?:lips?|tongue|throat|face)\b|\bthroat (?:\w+ ){0,3}clos\w*|\banaphyla\w*|\ballergic "
        rf"reaction\b|\bcant swallow\b|\bhives (?:all over|everywhere)\b|\b(?:se me )?hinch\w*{_GAP}"
        rf"{{0,3}} (?:labios|lengua|garganta|cara|boca)\b|\b(?:labios|lengua|garganta|cara){_GAP}{{0,3}} "
        rf"hinch\w*|\bse me (?:esta )?cerrando la garganta\b|\b(?:garganta|lengua){_GAP}{{0,3}} (?:cerrando|cerrada|cierra)\b|\bgarganta cerrada\b|\breaccion "
        r"alergica\b|\bno puedo tragar\b|\bepipen\b",
    ),
    (
        "bleeding",
        rf"\b(?:\w*bleed\w*|blood|sangr\w*)(?: (?:\w+|,)){{0,8}} {_NOT} (?:\w+ )?{_STOP}\b|\b\w*bleed\w* (?:for|since)"
        rf" (?:an? |over |about |almost |nearly |more than |like |\d+ )?(?:hours?|hr|\d+|half an hour)"
        rf"|\b(?:vomit\w*|throw\w* up|threw up|cough\w*|spit\w*|puk\w*)(?: up)?(?: \w+){{0,2}} blood\b"
        rf"|\bblood (?:\w+ ){{0,3}}(?:vomit|throw up|threw up|cough|when i (?:throw up|vomit|cough))"
        rf"|\b(?:black|tarry|bloody) (?:\w+ ){{0,2}}(?:stools?|poops?|bowel movements?|bm|diarrhea)\b"
        rf"|\b(?:stools?|poops?|pooping|pooped|bms?|bowel movements?) (?:\w+ ){{0,3}}(?:black|tarry|bloody|tar|maroon)\b"
        rf"|\bblack (?:tar|tarry)\b|\b(?:popo|heces|excremento) (?:\w+ ){{0,2}}(?:como )?(?:chapopote|alquitran)\b|\bblood in (?:my |the )?(?:stool|"
        rf"stools|poop|vomit|diarrhea)\b|\bdiarrh?ea (?:with|full of) blood\b|\bbloody (?:vomit|diarrhea)\b"
        rf"|\b(?:\w*bleed\w*|blood|sangr\w*){_GAP}{{0,3}} (?:nonstop|non stop|constantly|for hours|all day"
        rf"|sin parar|sin control)\b|\bcoffee grounds?\b|\bhemorrhag\w*|\bheavy bleeding\b|\bbleeding (?:a lot|heavily|badly|like crazy|everywhere)\b"
        rf"|\bsangr\w*(?: \w+){{0,5}} (?:no (?:para|paro|se (?:detiene|quita|para))|sin parar)\b"
        # coughing up blood said at length or as pink froth; a nosebleed that has gone on and soaked cloths
        r"|\bcough\w*(?: up)?(?: \S+){0,8} (?<!no )(?<!not )(?<!any )(?<!without )(?<!sin )(?:blood|bloody|sangre)\b|\bpink (?:foamy|frothy|foam|froth)\b"
        r"|\bsoaked (?:through )?(?:\d+|two|three|four|a few|several|a couple of|multiple) (?:\w+ )?(?:towels|rags|pads"
        r"|napkins|tissues|shirts)\b|\b(?:nosebleed|nose bleed|nose is bleeding)(?: \S+){0,10} (?:still going|still"
        r" bleeding|wont stop|will not stop|hours)\b"
        # blood told by its colour: "coughing up red stuff", "vomité algo rojo"
        r"|\b(?:cough\w*|vomit\w*|throw\w* up|threw up|spit\w*|puk\w*)(?: up)?(?: \w+){0,2} (?:bright |dark )?red"
        r" (?:stuff|stuf|liquid|blood|chunks|streaks|spots|clots)\b|\b(?:cough\w*|vomit\w*|spit\w*)(?: up)?(?: \w+){0,3}"
        r" bright red\b|\b(?:tos\w*|vomit\w*|escup\w*|devolv\w*|arroj\w*) (?:\w+ ){0,2}(?:algo )?(?:rojo|roja|colorado"
        r"|colorada)\b"
        rf"|\b(?:vomit\w*|tos\w*|escup\w*|arroj\w*|devolv\w*) (?:\w+ )?sangre\b|\b(?:sale|salio|sali|echa|echo|saca|saco)"
        rf" sangre (?:al|cuando|de la boca al) (?:toser|toso|tose|vomitar|vomito|vomita|escupir)\b|\b(?:echo|echa|echando"
        rf"|sale|salio|arrojo|arroja|bota|boto) sangre por la boca\b|\b(?:heces|popo|excremento|"
        rf"evacuaciones)(?: \w+){{0,2}} (?:negr\w*|con sangre)\b|\bsangre en (?:el |la |las |mi )?(?:popo|"
        rf"heces|excremento|vomito)\b|\bhemorragia\b|\bmucha sangre\b|\bwont stop bleeding\b"
        rf"|\b(?:a lot of|lots of|so much|too much|mucha|muchisima|bastante) (?:blood|sangre)\b|\bblood in the (?:toilet|bowl"
        rf"|sink)\b|\bsangre en el (?:inodoro|bano|escusado)\b"
        rf"|\b(?:pouring|gushing|spurting|squirting|streaming|spraying) (?:\w+ )?blood\b|\bblood (?:\w+ ){{0,2}}(?:pouring|gushing"
        rf"|spurting|everywhere)\b|\b(?:bleeding|sangrando|sangra)(?: \w+){{0,4}} (?:a lot|heavily|badly|like crazy|so much|too much"
        rf"|mucho|muchisimo|demasiado|bastante)\b|\b(?:stools?|poops?|pooping|bms?|popo|heces|caca){_GAP}{{0,3}} (?:blood|sangre)\b"
        rf"|\b(?:cant|can not|couldnt) (?:get (?:it|the \w+) to )?stop (?:the |this )?bleed\w*|\bblood everywhere\b"
        rf"|\bsangre por todos lados\b",
    ),
    (
        "head_injury",
        r"\b(?:hit|bumped|banged|struck) (?:my|his|her|their) head\b|\bhead injury\b|\bfell (?:and|down and) (?:hit|can"
        r"|couldnt|cant)\b|\bcant get up\b|\b(?:me pegue|se pego|se golpeo|me golpee|golpe) (?:en )?la cabeza\b"
        r"|\bse cayo y (?:se pego|no (?:se )?puede)\b",
    ),
    (
        "self_harm",
        r"\bkill (?:my ?self|me|him ?self|her ?self|themselves)\b|\b(?:end|take) (?:his|her|their) (?:own )?life\b"
        r"|\b(?:matarse|quitarse la vida|suicidarse)\b|\bsuicid\w*|\bend(?:ing)? (?:my life|it all|things)\b|\b(?:dont|do not)"
        r" want to (?:be alive|live|wake up|be here)\b|\bwant to die\b|\bwanna die\b|\bwish i (?:was|were)"
        r" dead\b|\bbetter off dead\b|\b(?:hurt|harm|cut)\w* (?:my ?self|him ?self|her ?self)\b|\bself harm\w*"
        r"|\bno reason to live\b|\btook (?:\w+ ){0,3}too many\b|\boverdos\w*|\b(?:took|swallowed|ate|drank|downed|tomo|se tomo|se trago)"
        r" (?:the |a |my |his |her |half the |half a |toda la |todo el )?(?:whole |entire )?(?:bottle|pack|box|botella|frasco"
        r"|caja)(?: \w+){0,2}\s*(?:$|[.!,]|of (?:pills|tablets|medicine|sleeping pills|tylenol))|\bnot worth living\b|\bgive up on life\b|\bquiero morir\w*|\bme quiero morir\b"
        r"|\bno quiero vivir\b|\bquitarme la vida\b|\bmatarme\b|\bhacerme dano\b|\bno vale la pena vivir\b"
        r"|\btome (?:muchas|demasiadas) pastillas\b|\bsobredosis\b|\bacabar con (?:todo|mi vida)\b"
        r"|\bno quiero (?:seguir|estar) (?:viviendo|aqui|viva|vivo)\b"
        # told of someone else ("my grandma keeps saying she wants to die", "dice que ya no quiere vivir") or with
        # a warning sign ("she's been giving her stuff away")
        r"|\b(?:wants|wanted|wanting) to die\b|\bwish(?:es|ed)? (?:she|he|they) (?:was|were) dead\b"
        r"|\b(?:doesnt|does not|didnt|did not) want to (?:live|be alive|wake up|be here anymore|go on)\b"
        r"|\b(?:se )?(?:quiere|queria|quisiera|desea|deseo) morir\w*|\bquiere(?:n)? matarse\b|\b(?:no|ya no) (?:quiere|queria)"
        r" (?:seguir )?vivir\b|\bquisiera (?:estar muert[oa]|morirme)\b|\bojala (?:me|se) muriera\b"
        r"|\b(?:giving|gave|gives|given) (?:away )?(?:all )?(?:of )?(?:her|his|my|their) (?:stuff|things|belongings"
        r"|possessions|jewelry)(?: \w+)? away\b|\b(?:giving|gave|given) away (?:all )?(?:of )?(?:her|his|my|their)"
        r" (?:stuff|things|belongings|possessions|jewelry)\b|\b(?:regalando|regalo|regala) (?:todas )?(?:sus|mis)"
        r" (?:cosas|pertenencias|joyas)\b"
        # thinking of an overdose ("thought about swallowing the whole bottle"), a life taken in a clitic
        # ("esta vida ... pienso en quitármela")
        r"|\b(?:thought|thinking|think|thinkin) (?:about|of) (?:\w+ ){0,2}(?:swallow\w*|taking|downing|eating)"
        r" (?:all\b|the (?:whole|entire) (?:bottle|thing|pack|box)|every (?:pill|one|last)|a (?:bunch|handful)|too many)|\b(?:whole|entire) bottle to (?:make it (?:all )?stop|end it)\b"
        r"|\b(?:pienso|pensado|pensando|pense) en (?:tomarme|tragarme) (?:\w+ ){0,3}(?:pastillas|frasco|botella)\b"
        r"|\bvida\b(?: \S+){0,8} (?:quitarmela|quitarsela)\b",
    ),
    (
        "self_harm",
        r"\bwant (?:it all|everything|it|this|my life) to (?:end|be over|stop)\b|\bbetter off without me\b"
        r"|\b(?:cant|can not|dont want to) go on\b|\bno (?:point|reason) (?:in |to )?(?:living|going on|live)\b"
        r"|\btired of (?:living|being alive|life)\b|\b(?:sleep|go to sleep) and (?:not|never) wake up\b"
        r"|\bdont want to (?:exist|be here anymore|wake up)\b|\bgive up on (?:everything|living)\b"
        r"|\bend (?:it|my life|everything)\s*(?:[.!,]|$)|\bthinking (?:about|of) (?:dying|death|killing)\b"
        r"|\b(?:thinking|thinkin|thought|think|pensando|pienso) (?:about|of|en) (?:ending|end|acabar con) (?:it|it all|things"
        r"|everything|my life|todo|mi vida)\b"
        r"|\b(?:quiero|quisiera) que (?:todo|esto) (?:termine|se acabe)\b|\bno (?:puedo|quiero) seguir\b"
        r"|\bestarian mejor sin mi\b|\bya no (?:aguanto|puedo mas) (?:vivir|con la vida)\b"
        r"|\b(?:took|swallowed|ate|tomo|se tomo|se trago)(?: \w+){0,2} (?:\d+|all|a bunch|a handful|handful|several"
        r"|many|todas|muchas|demasiadas)(?: \w+){0,2} (?:pills|tablets|capsules|pastillas)\b|\bgot into (?:my|the|his|her)"
        r" (?:pills|medicine)\b|\b(?:dont|do not|cant|no longer) see (?:the|any) point\b|\b(?:no|whats the|what is"
        r" the) point (?:in|of) (?:going on|living|life|anything|trying|being here)\b|\bno le veo sentido\b"
        r"|\bmejor me muero\b|\bojala me muera\b|\bquisiera morirme\b|\bbetter off (?:if i (?:was|were|wasnt|werent"
        r"|was not|were not) (?:gone|dead|here|around|alive)|without me)\b|\bno le veo (?:caso|sentido) a (?:seguir|vivir"
        r"|la vida|nada)\b|\b(?:me las|las|me) (?:quiero|voy a) tomar(?:me)? todas\b|\b(?:tomarme|tragarme) todas las"
        r" pastillas\b|\b(?:take|swallow) (?:them all|all (?:of )?(?:my|the|them|these) (?:pills|meds|tablets)|the whole"
        r" bottle)\b|\bif i (?:was|were) gone\b|\b(?:kid|child|son|daughter|baby|toddler|grandson|granddaughter|dog|nin[oa]|bebe|niet[oa]"
        r"|hij[oa])\w*(?: \w+){0,2} (?:swallowed|ate|got into|se tomo|se comio|se trago)(?: \w+){0,3} (?:pills|medicine|tablets"
        r"|pastillas|medicina)\b"
        r"|\bdesaparecer para siempre\b|\bmorirme\b|\b(?:me )?(?:quiero|voy a) matar(?:me)?\b",
    ),
    (
        "seizure",
        r"\bseiz\w*|\bconvuls\w*|\bhaving a fit\b|\bataque epileptico\b|\bconvulsion\w*|\b(?:tuvo|le dio|me dio"
        r"|esta teniendo) un ataque\b|\bse puso (?:rigid[oa]|ties[oa])\b|\bshaking uncontrollably\b",
    ),
    (
        "distress",
        r"\b(?:feel|feels|feeling|felt) like (?:i am|i|he is|she is|hes|shes) (?:dying|going to die|about to die"
        r"|gonna die|having a heart attack)\b|\b(?:i am|i think i am|he is|she is) dying\b|\bsiento que me"
        r" (?:muero|voy a morir|estoy muriendo)\b|\bme (?:estoy muriendo|voy a morir)\b|\bse (?:esta muriendo"
        r"|va a morir)\b|\b(?:me siento|estoy|se siente|esta) muy grave\b|\bsiento que me muero\b"
        r"|\b(?:quiero|voy a|me quiero|me voy a) hacer(?:me)? dano\b|\b(?:quitar|quitarme|quitarse) la vida\b"
        r"|\bno le (?:encuentro|veo|hallo) (?:sentido|caso) a (?:la vida|vivir|seguir)\b|\b(?:quisiera|quiero|ojala)(?: ya)? no"
        r" (?:despertar\w*|despierte|amanecer\w*|amanezca|volver a despertar)\b(?! (?:temprano|tarde|a las|tan|manana|muy))|\bmejor me mato\b|\bme (?:quiero|voy a) morir\b",
    ),
    (
        "emergency_care",
        r"\bcall(?:ing|ed)? 911\b|\b911\b|\bambulance\b|\bgo to the (?:er|emergency)\b|\bemergency room\b"
        r"|\b(?:am|im|i am|is|are|were|we are) (?:in|at) the (?:er|emergency room|hospital) (?:right )?now\b"
        r"|\b(?:at|in) the (?:er|emergency room|hospital) (?:right )?now\b"
        r"|\b(?:heading|going|on (?:my|our) way) to the (?:er|emergency|hospital)\b|\bvoy (?:camino )?(?:a|al) (?:la )?"
        r"(?:sala de )?(?:emergencias|urgencias|hospital)\b"
        r"|\bambulancia\b|\bsala de emergencias\b|\burgencias\b|\bllamar al 911\b|\b(?:lo|la|le) llev\w* (?:al|a la|a)"
        r" (?:hospital|emergencias|urgencias|clinica)\b",
    ),
    (
        "fainting",
        r"\bin and out of (?:it|consciousness)\b|\bbarely (?:conscious|responsive|awake|breathing)\b|\bwont open"
        r" (?:his|her|their) eyes\b|\bno (?:abre|quiere abrir) los ojos\b|\b(?:eyes|ojos) (?:rolled|rolling|en blanco)"
        r"|\beverything (?:went|goes|going|is going) (?:black|dark|gray|grey)\b|\bse me (?:nublo|oscurecio) todo\b"
        r"|\bperdio el sentido\b|\bno (?:esta|estaba) en si\b|\bpatatus\b|\bse (?:me |le |nos )?priv(?:o|ó|aba|ado)\b"
        r"|\bme priv[eé]\b|\bse quedo como muert[oa]\b|\b(?:no )?(?:vuelve|volvio|volvia) en si\b|\bno (?:reacciona|reaccionaba|reacciono|respondia)\b"
        r"|\b(?:cayo|se cayo|callo|se callo) al (?:suelo|piso)\b|\b(?:palid[oa]|gris|blanc[oa]) y (?:fri[oa]|sudando|sudad[oa]"
        r"|sudoros[oa])\b|\bpale and (?:cold|clammy|sweaty)\b|\bcold and clammy\b|\bno (?:se )?(?:puede|podia) despertar(?:la|lo|le)?\b",
    ),
    (
        "confusion",
        r"\bacting (?:strange\w*|weird\w*|funny|odd\w*|off|confused|drunk|crazy|out of it)\b|\bnot (?:acting )?like"
        r" (?:him|her)self\b|\b(?:isnt|is not|not) (?:him|her)self\b|\bactua (?:muy )?(?:raro|rara|extran[oa])\b"
        r"|\b(?:esta|anda) (?:muy )?(?:perdid[oa]|ida|ido)\b|\bno es (?:el|la) mism[oa]\b",
    ),
    (
        "seizure",
        r"\b(?:had|having|has|tuvo|le dio|le esta dando|esta teniendo) (?:\w+ ){0,3}(?:fit|fits|ataques?)\b"
        r"|\b(?:eyes|ojos) (?:rolled|rolling|se le voltearon)\b",
    ),
    (
        "trouble_breathing",
        r"\bno (?:me|le|les|nos) alcanza (?:el )?(?:aire|respiracion|aliento)\b|\b(?:jadea\w*|gurgl\w*|rattl\w*)\b"
        r"|\b(?:lips|labios|skin|piel|unas|nails|fingernails|dedos) (?:\w+ )?(?:blue|azul\w*|morad\w*)\b"
        r"|\bme siento ahogad[oa]\b|\bahogad[oa]\b|\bresoll\w*|\bresuello\b",
    ),
    (
        "self_harm",
        r"\b(?:took|take|taking|taken|swallowed|tome|tomo|me tome|se tomo)\b(?: \w+){0,7} (?:on purpose|intentionally"
        r"|deliberately|a proposito|adrede|apropo\w*)\b|\b(?:quiero|quisiera|me gustaria|want to|wanna|wish i could"
        r"|i just want to) (?:\w+ )?(?:desaparecer\w*|disappear)\b|\bya no aguanto(?: mas)?(?: (?:vivir|la vida|esto"
        r"|nada|asi))?\s*(?:$|[.,!;])|\bya no puedo mas\s*(?:$|[.,!;])|\bwhats the point (?:anymore|of anything)\b"
        r"|\bcant (?:do|take) (?:this|it) anymore\b|\b(?:i|ive) (?:just )?(?:give|gave|given) up\s*(?:$|[.,!;])"
        r"|\b(?:tired|done|cansad[oa]) (?:of|with|de) (?:fighting|luchar|vivir|todo)\b|\bpara que seguir\b"
        r"|\bno quiero (?:despertar|amanecer)\b(?! (?:temprano|tarde|a las|tan|manana|muy))|\bmejor (?:ya )?no (?:despertar|amanecer)\b"
        r"|\bbetter off (?:without me|gone|dead)\b|\beveryone (?:would be|is) better\b"
        r"|\bbetter off (?:\w+ ){0,3}if (?:i|he|she) (?:just )?(?:didnt|did not|never|wouldnt|dont) wake up\b"
        r"|\b(?:wish|hope) (?:i|id) (?:just )?(?:wouldnt|didnt|would not|did not|never|could just not) wake up"
        r"(?: again| anymore| tomorrow| in the morning)?\s*(?:$|[.,!;])",
    ),
    (
        "fainting",
        r"\bslump\w*|\bonly (?:groans|moans|grunts|mumbles)\b|\b(?:wont|doesnt|isnt|is not|didnt|not|cant get (?:him|her) to)"
        r" (?:answer\w*|respond\w*) (?:me|us|when)\b|\bwent limp\b|\b(?:is|was|went|gone) (?:all )?limp\b",
    ),
    (
        "stroke",
        r"\b(?:left|right|one) (?:arm|leg|side of (?:my|his|her) face)(?: \w+){0,2} (?:went |is |feels |got |going"
        r" |suddenly )?(?:numb|dead|limp|weak|heavy|paralyzed)\b|\bcant (?:walk|stand) (?:straight|up straight|right)\b"
        r"|\bwalking (?:funny|crooked|sideways)\b",
    ),
    (
        "self_harm",
        r"\b(?:saving|stockpil\w*|hoard\w*|collecting) (?:up )?(?:\w+ )?(?:pills|meds|medicine|tablets)\b"
        r"|\b(?:juntando|guardando) (?:las |mis )?(?:pastillas|medicinas)\b",
    ),
    (
        "fainting",
        r"\b(?:cant|can not|couldnt|can barely|cannot) keep (?:my|his|her|their) eyes open\b|\bno (?:puede|puedo)"
        r" (?:mantener|tener) los ojos abiertos\b|\bse (?:le|me) fue el (?:conocimiento|sentido)\b",
    ),
    (
        "confusion",
        r"\b(?:isnt|is not|not|arent|wasnt|stopped) making (?:any )?sense\b|\b(?:remember|recognize|recognise|know)"
        r" who (?:i|we|he|she|you) (?:am|are|is)\b|\b(?:doesnt|didnt|cant|wont) recogni[sz]e (?:me|us|anyone|anybody"
        r"|her|him|his|my)\b|\bseeing (?:things|bugs|people|stuff|animals|spiders|kids)\b|\b(?:that|who) (?:arent|isnt"
        r"|are not|is not|werent|wasnt) (?:there|real)\b|\bve (?:cosas|bichos|gente|animales|personas) que no\b",
    ),
    (
        "stroke",
        r"\b(?:arm|arms|leg|legs|hand|face|side|brazo|pierna|mano|cara|lado)(?: \w+){0,5} (?:wont|doesnt|cant|isnt|no)"
        r" (?:work|working|move|moving|funciona|responde|se mueve|la puede mover|lo puede mover)\b",
    ),
    (
        "bleeding",
        r"\b(?:\w*bleed\w*|bled|sangr\w*)(?: \w+){0,5} (?:for|since|desde hace|hace) (?:over |more than |about |almost"
        r" |nearly |like |an? |mas de |media |una |casi )*(?:hours?|hrs?|\d+ (?:min\w*|hours?|hrs?)|horas?|media hora"
        r"|\d+ minutos|forever)\b|\b\w*bleed\w*(?: \w+){0,2} (?:going|lasting|been going|goin) (?:on )?(?:for )?(?:over |about"
        r" |like |almost |nearly )?(?:an? |\d+ )(?:min\w*|hours?|hrs?)\b(?!(?: \S+){0,4} (?:then |and |but )?(?:stopped|quit"
        r"|paro))|\b\w*bleed\w*(?: \S+){0,6} (?:just |still )?(?:keeps|keep|kept) (?:going|bleeding|coming)\b"
        r"|\bsangr\w*(?: \w+){0,5} no (?:se )?(?:le |me |les )?(?:para|paro|detiene|detuvo"
        r"|quita|quito|corta|corto|deja)\b",
    ),
    (
        "allergic_reaction",
        r"\b(?:eyes?|ojos?) (?:\w+ ){0,2}(?:swell\w*|swollen|hinchad\w*) (?:shut|closed|cerrados?)\b",
    ),
    (
        "self_harm",
        r"\b(?:no|whats|what is|see no|dont see|cant see|do not see)(?: \w+){0,2} point (?:\w+ ){0,2}(?:living|going on"
        r"|life|being alive|being here|of it all)\b",
    ),
    (
        "emergency_care",
        r"\b(?:were|we are|im|i am|hes|shes|he is|she is|they are|theyre) (?:\w+ )?(?:at|in) the (?:er|emergency"
        r" room|emergency|emergency department|ed)\b",
    ),
    (
        "bleeding",
        r"\bpur[oa] sangre\b|\bsolo sangre\b|\bnothing but blood\b|\b(?:just|all) blood\b",
    ),
    (
        "emergency_care",
        r"\b(?:take|bring|rush|drive|taking|bringing|rushing|llevo|llevar\w*|llevamos) (?:\w+ )?(?:to|al|a la|a)"
        r" (?:the )?(?:er|hospital|emergenc\w*|urgencias)\b|\bpoison control\b",
    ),
    *_CONCEPT_PATTERNS,
)

# Despair said of a symptom ("la diarrea, ya no aguanto", "4, I can't take it anymore" to the severity
# question) grades the symptom (very severe, LABELS.md); said alone it stays a self-harm flag.
DESPAIR_PATTERN = (
    r"\bya no (?:aguanto|puedo|soporto)(?: mas)?(?: (?:esto|nada|asi))?\s*(?:$|[.,!;])"
    r"|\bcant (?:do|take|stand) (?:this|it) anymore\b"
)

# A pattern hit in one of these phrasings is not a red flag ("confused about when to take it").
_LONG_AGO = (
    r"(?:(?:\w+ )?(?:years?|yrs?|months?) ago|a long time ago|last (?:year|month|spring|summer|fall|autumn|winter)"
    r"|back in (?:january|february|march|april|may|june|july|august|september|october|november|december|the spring"
    r"|the summer|the fall|the winter)|(?:que|cuando) tuve en (?:enero|febrero|marzo|abril|mayo|junio|julio|agosto"
    r"|septiembre|octubre|noviembre|diciembre)|in (?:19|20)\d\d|hace (?:\w+ ){0,2}"
    r"(?:anos|ano|meses|mucho tiempo)|el (?:ano|mes) pasado|en (?:19|20)\d\d)"
)
_PAST_EVENT = (
    r"(?:\w+ )?(?:faint\w*|passed out|blacked out|desmay\w*|seizures?|convulsion\w*|heart attack|infarto|stroke|derrame"
    r"|ataque (?:al corazon|cardiaco)|blood clots?|coagulos?|embolia|fever|fevers|fiebre|calentura|chest pains?"
    r"|dolor (?:de|en el) pecho|(?:throwing|threw|throw|vomit\w*|cough\w*|spitting|spit) (?:up )?blood|bleed\w*|bled"
    r"|(?:vomit\w*|tos\w*) (?:con )?sangre|sangr\w*|swollen \w+|swelling|hinchad\w*|hinchazon)"
)
# ... unless it happened again ("a seizure last year, and another one today")
_NOT_AGAIN = (
    r"(?!(?: \S+){0,8} (?:another|again|today|tonight|right now|this (?:morning|week)|yesterday|last night|otra vez|otro mas"
    r"|otra mas|otro igual|hoy|ahora mismo|de nuevo|volvio|volvi|anoche|ayer)\b)"
)
# A word between the event and its date that is not "again" or "today" ("threw up blood again today. Happened
# last month too" is news).
_NOT_NOW = r"(?: (?!(?:again|today|tonight|now|otra|hoy|ahora|anoche)\b)\S+)"
# ... unless the sender says they have it now ("does it cause chest pain? I have it right now")
_NOT_HAVING = (
    r"(?!.*\b(?:i have|i am having|i got|ive got|i have got|having it|it hurts|right now|tengo|me duele|me esta"
    r"|ahora mismo|ahorita|estoy con)\b)"
)
# ... unless it came back ("the fever broke but it's back tonight")
_NOT_BACK = r"(?!(?: \S+){0,6} (?:but|pero|again|back|otra vez|de nuevo|volvio|still|todavia|sigue)\b)"
# A red flag that has passed: "the fever's gone now", "la calentura ya se me quitó" (unless it came back).
_OVER = (
    r"(?:(?:is|s|was|has|have|are|re) )?(?:all )?(?:gone|went away|broke|resolved|cleared up|fixed|(?:all |totally )?"
    r"(?:fine|ok|okay|good|better|normal) now|(?:been |felt |feeling )?(?:fine|ok|okay|good|great|normal) (?:ever )?since"
    rf"|se (?:me |le )?(?:quito|fue|paso)|ya (?:se )?(?:me |le )?(?:quito|paso|fue|bajo))\b{_NOT_BACK}"
)
# ... and a doctor saw to it: "fine now" alone does not end a faint of yesterday (LABELS.md: always emergency)
_SEEN = (
    r"(?:er|emergency room|emergency|hospital|urgent care|doctor|doctors|oncologist|nurse|pcp|provider|clinic|they said"
    r"|checked (?:me |it )?out|sent me home"
    r"|admitted|urgencias|emergencia|clinica|medico|doctora|me revisaron|me dieron de alta)"
)
# A red flag that has passed and was seen to: "ended up in the ER with a fever, they sent me home, fever's gone
# now", "la calentura ya se me quitó, el doctor dijo que era gripa" (unless it came back).
RESOLVED_EVENT_PATTERN: str = (
    rf"\b{_SEEN}\b(?: \S+){{0,12}} {_PAST_EVENT}\b(?: \S+){{0,20}} {_OVER}"
    rf"|\b{_PAST_EVENT}\b(?: \S+){{0,12}} {_SEEN}\b(?: \S+){{0,20}} {_OVER}"
    rf"|\b{_PAST_EVENT}\b(?: \S+){{0,20}} {_OVER}(?=(?: \S+){{0,12}} {_SEEN}\b)"
    # a fever is a state: once it has broken it is over, seen to or not ("the fever's gone now")
    r"|\b(?:fever|fevers|fiebre|calentura|temp|temperature|chills|escalofrios)\b(?: \S+){0,3} (?:(?:is|s|has|finally) )?"
    r"(?:gone|went away|broke|went down|came down|is down|se (?:me |le )?(?:quito|fue|bajo)|ya (?:se )?(?:me |le )?"
    rf"(?:quito|paso|fue|bajo))\b{_NOT_BACK}"
)
# A red flag told as history: "hace dos años me desmayé", "had chest pain back in May, it was my gallbladder".
PAST_EVENT_PATTERN: str = (
    rf"(?:\b{_LONG_AGO}\b(?: \S+){{0,5}} {_PAST_EVENT}|\b{_PAST_EVENT}{_NOT_NOW}{{0,5}} {_LONG_AGO}\b){_NOT_AGAIN}"
)
EMERGENCY_EXCLUSIONS: tuple[str, ...] = (
    # trembling from nerves, hot from the weather, a faint long ago: not a fever, chills or fainting now
    r"\btembl\w* (?:de|por) (?:los )?(?:nervios|miedo|emocion|coraje|ansiedad)\b|\b(?:shaking|trembling) (?:from|with)"
    r" (?:nerves|anxiety|fear)\b",
    r"\b(?:hot|warm|calor)\b(?: \w+){0,2} (?:in|outside|from|because of|por|del|de|with) (?:this |the |el |la )?(?:weather"
    r"|heat|sun|summer|house|car|kitchen|clima|sol|verano|casa)\b",
    rf"(?:\b(?:faint\w*|passed out|blacked out|desmay\w*)\b(?: \w+){{0,3}} (?:years?|months?|a long time|long) ago\b"
    rf"|\b(?:desmay\w*)\b(?: \w+){{0,2}} hace (?:anos|mucho tiempo|meses)\b){_NOT_AGAIN}",
    # an event long past, told as history ("hace dos años me desmayé…", "had a seizure in 2019, can I take it?")
    PAST_EVENT_PATTERN,
    # an event over and done ("ended up in the ER with a fever, they sent me home, fever's gone now")
    RESOLVED_EVENT_PATTERN,
    # "does this medicine cause chest pain? my neighbor said hers did", "¿esta medicina da dolor de pecho?": a
    # question about a possible effect, unless the sender says they have it
    r"\b(?:does|do|can|could|will|would) (?:it|this|that|these|they|the \w+|this \w+|that \w+|these \w+"
    r"|(?!(?:i|you|u|we|someone|somebody|anyone|my|me|he|she|ya|yall)\b)\w+)(?: \w+)?"
    r" (?:cause|causes|give|gives|make|bring on)(?: you| people| patients| me| anyone)?(?: \w+){1,8}\s*\?"
    rf"{_NOT_HAVING}"
    r"|\b(?:esta|este|la|el|esa|ese) (?:\w+ )?(?:da|dan|causa|causan|provoca|provocan|puede dar|puede causar)"
    rf"(?: \w+){{1,4}}\s*\?{_NOT_HAVING}",
    # "what temperature counts as a fever?", "¿a partir de cuánto es fiebre?": asking where the line is
    r"\b(?:what|which|at what) (?:temperature|temp|number|reading|degree)s?(?: \w+){0,3} (?:counts?|is considered|is|would"
    r" be|means?)(?: as)? (?:a )?(?:fever|high)\b|\b(?:que|cual|a partir de que|desde que|a partir de cuanto|desde"
    r" cuanto) (?:temperatura )?(?:se considera|es|cuenta como)? ?(?:fiebre|calentura)\b",
    # a question about a drug's effects, not a report: "is shortness of breath a side effect of olaparib?"
    r"\b(?:is|are|can|could) (?:(?!my |mi |this |his |her |these )\w+ ){1,4}(?:a |an )?(?:common |normal |known |possible"
    r" |usual |real )?side effects? (?:of|from|with|on)\b|\b(?:es|son) (?:el |la |los |las )?(?:(?!mi |mis |su |este )\w+ ){1,4}"
    r"(?:un |una )?(?:efecto secundario|efectos secundarios|reaccion) (?:de|del|por)\b",
    r"\bcalentura (?:en|de) (?:el |la |los )?(?:labio|labios|boca)\b",  # a cold sore, not a fever
    r"\bchill (?:with|out|on|about|bro|fam|fr|man|dude|yall|pls|please)\b|\bchillin\w*\b",  # slang: calm down
    r"\b(?:phones?|texts?|messages?|technology|computers?|these|this|it|they)(?: \w+)? (?:confuse|confuses) (?:me|us"
    r"|her|him)\b|\b(?:phones?|texts?|messages?|technology|computers?|numbers?|options?) (?:\w+ )?confused (?:me|us"
    r"|her|him)\b|\b(?:me|le) confunden\b",
    # confused by our texts, not a confused mind: "im confused what is this asking", "what do 1 2 3 mean? im confused"
    r"\b(?:im|i am|i m|i was|estoy|ando|me) (?:so |really |very |a bit |kind of |kinda |muy |bien |un poco )?"
    r"confu\w*(?: \S+){0,6} (?:text|texts|message|messages|msg|asking|ask|question|questions|reply|answer|options?"
    r"|numbers?|mean|means|mensaje|mensajes|pregunta|preguntas|opciones?|numeros?|contestar|responder)\b",
    r"\b(?:text|texts|message|messages|msg|asking|question|questions|reply|answer|options?|numbers?|mean|means"
    r"|mensaje|mensajes|pregunta|preguntas|opciones?|numeros?)\b(?: \S+){0,6} (?:im|i am|i m|estoy|ando|me)"
    r" (?:so |really |very |a bit |kind of |kinda |muy |bien |un poco )?confu\w*",
    # busy, not unable to speak: "can't talk right now", "hoy no puedo hablar, mejor mañana"
    r"\b(?:cant|can not|cannot) (?:talk|speak)(?: to (?:you|u))? (?:right now|now|rn|atm|at the moment|today"
    r"|tonight|this (?:morning|afternoon|week)|till|until|til|at work|im|i am|busy|driving|call|text|later)\b",
    r"\b(?:busy|at work|driving|in a meeting|at church|in church|trabajando|manejando|ocupad[oa])\b(?: \w+){0,3}"
    r" (?:cant|can not|no (?:puedo|puede)) (?:talk|speak|hablar)\b",
    r"\bno (?:puedo|podemos) hablar (?:ahorita|ahora|orita|hoy|en este momento|ahorita|al rato|mas tarde|luego"
    r"|estoy|ando|porque|por que|manana|mejor|bien ahorita)\b",
    r"\b(?:hoy|ahorita|ahora|orita|en este momento) no (?:puedo|podemos) hablar\b",
    r"\bconfus\w* (?:about|by|with|on|as to|regarding|over|sobre|con)\b",
    r"\b(?:bit|little|kind of|kinda|somewhat|un poco) confus\w*",
    r"\bconfusing\b",
    r"\bconfus\w* (?:about )?(?:which|what|how|cual|que|como) (?:\w+ )?(?:pills?|meds?|medicines?|medications?|doses?"
    r"|tablets?|bottles?|ones?|pastillas?|medicinas?|dosis)\b",
    r"\b(?:copays?|co pays?|prices?|costs?|bills?|payments?|deductibles?|insurance|seguro|copago|precio)(?: \w+){0,3}"
    r" (?:is |are |s |es )?(?:about to |going to |gonna |gon |finna )?(?:kill|killing) me\b"
    r"|\b(?:copays?|copago|precio|seguro|bills?|cuentas?)(?: \w+){0,3} (?:me va a matar|me esta matando|me mata)\b",
    r"\b(?:mean|means|meant|reply|replies|option|options|numbers?|text|texts|message|mensaje|significa|opcion)\b(?: \S+){0,3}"
    r" confu\w*\s*[.!?]*$",
    r"\bfaint (?:rash|line|smell|red|pink|mark)\w*",
    # figures of speech: "dying to know if it shipped", "nearly passed out when I saw the bill"
    r"\b(?:dying|die|dies) (?:to|for) (?:know|hear|see|find out|get|try|have|meet|go|tell)\b|\bdying of (?:curiosity"
    r"|boredom|laughter|embarrassment)\b|\bme muero (?:de (?:la )?(?:risa|ganas|curiosidad|hambre|sueno|verguenza)"
    r"|por (?:saber|ver|que))\b",
    r"\b(?:passed out|pass out|passing out|faint\w*|(?:had|have|having|gave me) a heart attack|died|die|dead|desmay\w*"
    r"|infarto|me muero|me mori)\b(?: \w+){0,3} (?:when|after|cuando|al) (?:i |we |he |she |my \w+ )?(?:saw|seen|see"
    r"|got|opened|read|heard|vi|vimos|ver|leer|lei|oi|abri)\b(?: \w+){0,3} (?:bill|bills|price|copay|statement|cost"
    r"|total|invoice|amount|balance|cuenta|precio|copago|factura|costo)\b",
    r"\bfaint ?hearted\b",
    # can't swallow for sore mouth, not a swelling throat (LABELS.md: mouth sores, can't eat or drink: severe)
    r"\b(?:(?:mouth|boca)(?: \S+){0,2} (?:sore|raw|hurts|llagas|ulcers|duele|arde|ardor)|sores?|llagas|ulcers?|ulceras"
    r"|mucositis)\b(?: (?!(?:hinch\w*|swell\w*|swollen|closing|cerrando|inflamad\w*)\b)\S+){0,6}"
    r" (?:cant|can not|cannot|couldnt|no (?:puede|puedo)) (?:even )?(?:swallow|tragar)\b",
    # confused by what to answer: "confused, what am I supposed to reply"
    r"\bconfu\w*\b(?: \S+){0,6} (?:supposed to|what to|how to|which to|meant to) (?:reply|answer|text|respond|say|pick"
    r"|choose|send|put)\b|\bconfu\w*\b(?: \S+){0,3} (?:which|what) (?:number|option|one|button)\b",
    r"\b(?:lol|lmao|lmfao|rofl|haha\w*|jaja\w*|jeje\w*)\b(?: \S+){0,3} (?:im|i am|i m) (?:dead|dying|ded)\b"
    r"|\b(?:im|i am|i m) (?:dead|dying|ded)\b(?: \S+){0,2} (?:lol|lmao|lmfao|rofl|haha\w*|jaja\w*)\b",
    r"\b(?:gave|give|giving|gives|gonna give|going to give) me a heart attack\b(?: \S+){0,6} (?:cost|costs|price|bill"
    r"|copay|pay|charge)\w*",
    r"\b(?:escalofrios|chills|shivers|chuchos)\b(?: \w+){0,2} (?:de|from|just|only|nomas de|solo de)? ?(?:pensar|thinking"
    r"|think|ver|seeing|imaginar)\b",
    r"\b(?:price|prices|cost|costs|copay\w*|bill|bills|precio)\b(?: \w+){0,5} (?:gave|giving|give|gives|dar|da) me a"
    r" heart attack\b",
    r"\bblood (?:tests?|testing|work|pressure|sugars?|draws?|counts?|thinners?|levels?|results?|panels?|type|cells?"
    r"|transfusions?|labs?|donation)\b|\b(?:analisis|examen(?:es)?|pruebas?|estudios?|muestras?|presion|conteo)"
    r" de (?:la )?sangre\b",
    r"\bfew drops? of blood\b",
    r"\b(?:dry|sore|raw|hurts?|painful|blisters?|sores|swollen gums)\b(?: \w+){0,4} cant (?:talk|speak)\b",
)

# Names of emergencies that are not side effects of the drug (the others also count as side_effect).
NON_SYMPTOM_EMERGENCIES: frozenset[str] = frozenset({"self_harm", "emergency_care"})

FEVER_WORDS: tuple[tuple[str, str], ...] = (
    (
        "fever",
        r"\bfever\w*|\bfebrile\b|\bhigh temp\w*|\brunning a temp\w*|\bburning up\b|\bfiebre\b"
        r"|\bcalentura\b|\bfebril\b|\btemperatura alta\b|\bhot to the touch\b|\bfeel(?:s|ing)? (?:really |very |so |super |kind of )?(?:hot|warm|feverish)\b"
        r"|\b(?:temp|temperature)s? (?:is |was |keeps |has been )?(?:high|up|elevated|going up|rising|spiking)\b"
        r"|\b(?:have|has|had|got|running|with) (?:a )?(?:high )?temperature\b|\b(?:tengo|tiene) temperatura\b"
        r"|\b(?:frente|cuerpo|piel) (?:muy |bien |super )?calient\w*|\bforehead (?:is |feels )?(?:really |very |so )?hot\b"
        r"|\bardiendo (?:en|de) (?:fiebre|calentura)\b|\bhirviendo en fiebre\b|\b(?:esta|estoy|anda|ando|esta bien)"
        r" hirviendo\b|\b(?:me siento|se siente|esta|estoy|ando|anda) (?:\w+ )?(?:afiebrad[oa]|calenturient[oa]|con fiebre)\b",
    ),
    (
        "chills",
        r"\bchills\b|\bshaking chills\b|\btiembl\w* de frio\b|\btemblando de frio\b|\brigors\b|\bescalofrios?\b|\bshivering\b|\bshaking all over\b"
        r"|\btemblando\b|\bcold sweats?\b|\btiritando\b|\bshaky and (?:cold|hot|sweaty)\b"
        r"|\b(?:con|tengo|tiene|me dan|le dan|me dieron) chuchos?\b|\bchuchos? de frio\b",  # Caribbean "chucho": a chill
    ),
)
# Words near a number that make it a temperature.
TEMPERATURE_CUES: str = (
    "fever feverish temp temperature temps febrile degrees degree deg fahrenheit celsius fiebre calentura"
    " temperatura grados thermometer termometro afiebrado afiebrada"
)
