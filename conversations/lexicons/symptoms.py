"""Side-effect lexicon: symptom phrases to canonical names, severity words, negation and hypothetical cues.

Patterns match the normalised text (see conversations.normalize). Canonical names follow
conversations.symptoms.SYMPTOM_LABELS where one exists.
"""

from __future__ import annotations

__all__ = [
    "BOUNDARY_WORDS",
    "HYPOTHETICAL_PATTERN",
    "NEGATION_BREAKERS",
    "NEGATORS",
    "QUESTION_VERB_PATTERN",
    "RESOLVED_PATTERN",
    "SEVERITY_PATTERNS",
    "SYMPTOM_EXCLUSIONS",
    "SYMPTOM_PATTERNS",
]

_W = r"(?: \w+)"  # one more word
_HANDS = (
    r"(?:hands?|feet|foot|palms?|soles?|fingers?|toes?|fingertips|heels?|manos?|pies?|palmas|plantas|dedos)"
)
_HURT = r"(?:hurts?|hurting|ache|aches|aching|sore|pain|painful|burn|burns|burning|throb\w*|killing me)"
_BODY = (
    r"(?:(?:my|his|her|the|lower|upper|mi|su|la|el) (?:back|side|head|body|face)|eyes?|ears?|nose|mouth|lips?"
    r"|tongue|teeth|tooth|gums?|throat|neck|stomach|belly|tummy|arms?|legs?|knees?|ankles?|feet|foot|hands?"
    r"|fingers?|toes?|nails?|fingernails?|toenails?|skin|scalp|joints?|muscles?|bones?|hips?|shoulders?|wrists?"
    r"|elbows?|calves|thighs|bladder|bowels?|cabeza|ojos?|oidos?"
    r"|nariz|boca|labios|lengua|dientes|encias|garganta|cuello|espalda|estomago|panza|barriga|brazos?|piernas?"
    r"|rodillas?|tobillos?|pies|pie|manos?|dedos?|unas|piel|cara|huesos|musculos|articulaciones|cuerpo|vejiga)"
)
_BAD = (
    r"(?:hurts?|hurting|sore|aching|achy|ache|aches|pain\w*|swollen|swelling|red|redness|itchy|itching|itches|numb"
    r"|tingl\w*|burn\w*|peel\w*|crack\w*|dry|bleed\w*|bruised|blurr\w*|watery|dark|darker|discolou?red|yellow|stiff"
    r"|weak|throbbing|raw|blister\w*|spots|bumps|sensitive|tender|killing me|inflamed|puffy|cramp\w*|spasm\w*"
    r"|weird|funny|on fire|falling out|falling off|coming off|lifting|loose|ringing|bloated|upset|irritated|oozing|infected|flaking|splitting|turning \w+"
    r"|duel[ea]n?|hinchad\w*|roj\w*|pican?|ardor|arden?|adormecid\w*|pel(?:a|an|ando|ad[oa]s?|aron)\b|resec\w*|manchas|debil"
    r"|rigid\w*|morad\w*|inflamad\w*|entumid\w*|agrietad\w*|ampollas|borros\w*|zumbido)"
)

# (canonical symptom, pattern). Order matters only for readability: every pattern is tried.
SYMPTOM_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "diarrhea",
        r"\bdiarr?h?o?e+a+h?s?\b|\bdiah?r+e+a+\b|\bthe runs\b|\bloose (?:stools?|bowels?|poops?|bm)\b"
        r"|\bwatery (?:stools?|poops?|bowel)\b|\brunny (?:stools?|poop)\b|\bevacuaciones (?:liquidas|sueltas)"
        r"|\b(?:estomago|panza) suelt[oa]\b|\bchorrillo\b|\bsoltura\b|\bdiarrea\b|\bcagalera\b"
        r"|\b(?:going|go|goes|running|run|ran) to the (?:bathroom|restroom|toilet)(?: \w+){0,2} (?:a lot|all day|all night"
        r"|constantly|nonstop|every \w+|\d+ times|so much)\b|\bpooping (?:a lot|all day|nonstop|constantly|so much)\b"
        r"|\bwatery (?:bms?|bowel movements?)\b|\b(?:suelt[oa]|floj[oa]) (?:del|de la) (?:estomago|panza|barriga)\b"
        r"|\bvoy (?:mucho|muchas veces) al bano\b|\bno (?:puedo|puede|paro|para) (?:de |parar de )?ir al bano\b|\bdeposiciones (?:liquidas|sueltas|aguadas|blandas)\b"
        r"|\bdiary (?:a|ah|uh)\b|\bdire (?:rhea|ria|ear|rear)\b|\bdia rhea\b|\bdie (?:rhea|rear)\b",
    ),
    (
        "nausea",
        r"\bnause\w*|\bqueas\w*|\bsick to (?:my|the) stomach\b|\bnauseas?\b|\bganas de vomitar\b"
        r"|\b(?:estomago revuelto|revuelto el estomago)\b|\basco\b|\bmareada del estomago\b|\bnaucea\w*",
    ),
    (
        "vomiting",
        r"\bvomit\w*|\bthrow\w* up\b|\bthrew (?:it )?up\b|\b(?:thru|through|threw|thrue) (?:it )?up\b|\bbomit\w*|\bbomito\w*|\bpuk\w*|\bbarf\w*|\bvomito\w*|\bvomite\b"
        r"|\bvomitando\b|\bdevolv\w*|\bdevuelvo\b|\bhurl\w*|\bup ?chuck\w*|\bheav\w* all\b|\b(?:cant|couldnt|can not|could not) keep (?:anything|nothing|food|it)"
        r" down\b|\bwont stay down\b",
    ),
    (
        "hand_foot",
        rf"\b{_HANDS}{_W}{{0,6}} (?:are |is |feel |feels |look |looks |keep )?(?:red|peel\w*|crack\w*|sandpaper|"
        rf"blister\w*|burn\w*|raw|swollen|tender|{_HURT}|pel\w*|rojas?|agrietad\w*|ardor|arden|duelen"
        rf"|me duelen|ampollas|on fire|like fire)\b"
        rf"|\b(?:red|peeling|cracked|cracking|blistered|blistering|burning|sore|raw|tender|painful)"
        rf"{_W}{{0,2}} {_HANDS}\b|\bhand (?:and )?foot\b|\b(?:skin|piel) (?:on|of|de) (?:my |the |mis |las |"
        rf"los )?{_HANDS}\b|\bhurts? to walk\b|\b(?:cracks?|blisters?|peeling|redness|sores?|splits?)(?: \w+){{0,2}} (?:on|in) (?:my |the |his "
        rf"|her )?{_HANDS}\b|\bduelen? (?:las |los |mis )?{_HANDS}\b"
        rf"|\b{_HANDS} (?:se me )?(?:estan |esta )?pel\w*|\b(?:eritema|erythema) (?:palmar|plantar|palmoplantar"
        rf"|palmo plantar|de (?:las )?(?:manos|palmas|pies)|on (?:the |my )?(?:palms|hands|soles|feet))\b"
        # the hands or feet said to be bad, with no more said ("hnds relly bad tday", "mis pies están fatal")
        rf"|\b(?:my |his |her |mis |sus )?{_HANDS} (?:are |r |is |feel |feels |estan |se sienten )?(?:really |so |very |real "
        rf"|pretty |super |muy |bien )?(?:bad|worse|awful|terrible|killing me|fatal|peor|horrible)\b",
    ),
    (
        "mouth_sores",
        r"\bmouth sores?\b|\bsores? (?:in|on|inside) (?:my |the )?(?:mouth|tongue|lips?|gums)\b"
        r"|\bmouth (?:is |feels )?(?:so |really |very )?(?:sore|raw|burning|hurts)\b|\bsore mouth\b"
        r"|\bcanker\w*|\bmouth ulcers?\b|\bulcers? in (?:my )?mouth\b|\bmucositis\b|\bllagas?\b|\baftas?\b"
        r"|\bulceras? (?:en|de) la boca\b|\bboca (?:lastimada|llena de llagas)\b|\bblisters? in"
        r" (?:my )?mouth\b|\bthrush\b|\bsore (?:gums|tongue)\b|\b(?:sores?|ulcers?|blisters?)(?: \w+){0,4} (?:mouth"
        r"|tongue|lips?|gums|throat)\b|\b(?:mouth|tongue|lips?|gums)(?: \w+){0,4} (?:sores?|ulcers?)\b",
    ),
    (
        "fatigue",
        r"\bfatigu\w*|\btired\w*|\bdrows\w*|\bsomnolen\w*|\bme (?:da|de|dan|den) (?:mucho )?sueno\b"
        r"|\btengo (?:mucho )?sueno\b|\bexhaust\w*|\bwiped out\b|\bworn out\b|\bno energy\b|\blow energy\b"
        r"|\bdrained\b|\bweak\w*|\bsleep\w* (?:most|all) (?:of )?(?:the )?day\b|\bsleepy\b|\blethargic\b"
        r"|\bcansad[oa]s?\b|\bcansancio\b|\bfatiga\w*|\bagotad[oa]s?\b|\bsin (?:energia|fuerzas)\b"
        r"|\bdebil\w*|\bduermo todo el dia\b|\bno tengo (?:energia|fuerzas)\b|\bno energy\b|\bsluggish\b"
        r"|\bcant get out of bed\b|\brun down\b|\bzero energy\b|\bbrain fog\b",
    ),
    (
        "swelling",
        r"\bswollen\b|\bswell\w*|\bswole\b|\bpuff\w*|\bedema\b|\bhinchad\w*|\bhinchazon\b|\bse me hinch\w*"
        r"|\bhinch\w*|\binflamad[oa]s?\b|\bretengo liquidos?\b|\bwater retention\b|\bretaining (?:water|fluid)\b|\bretengo agua\b|\bretencion de liquidos\b|\bbloated legs\b",
    ),
    (
        "dizziness",
        r"\bdizz\w*|\blight ?headed\w*|\bvertigo\b|\bspinning\b|\bwoozy\b|\bmare[oa]\w*|\bmareos?\b"
        r"|\bunsteady\b|\boff balance\b|\bme da vueltas\b",
    ),
    (
        "hot_flashes",
        r"\bhot flash\w*|\bhot flush\w*|\bnight sweats?\b|\bsweat\w* (?:at|all) night\b"
        r"|\bbochorn\w*|\bsofoc\w*|\bcalores\b|\bsudores? nocturnos?\b"
        r"|\bsweat\w* (?:a lot |so much |like crazy )?(?:at|all|every) night\b|\bsudores? (?:en|por|de) la noche\b"
        r"|\bsudo (?:mucho )?(?:en|por) la noche\b",
    ),
    ("bruising", r"\bbruis\w*|\bblack and blue\b|\bmoreton\w*|\bmorados?\b|\bcardenal\w*|\bpetechia\w*"),
    (
        "bleeding",
        r"\b\w*bleed\w*|\bbled\b|\b(?:bit of|some|little|spot of|spots of|streaks? of|trace of|specks? of) blood\b"
        r"|\bblood in (?:my |the )?(?:urine|pee|stool|stools|poop|spit)\b|\bbloody\b"
        r"|\bsangr\w*|\bsangre\b|\bhemorrag\w*",
    ),
    (
        "palpitations",
        r"\bheart (?:is |keeps |has been |was )?(?:racing|pounding|fluttering|skipping|beating (?:so |"
        r"really |very )?(?:fast|hard))\b|\bracing heart\b|\bpalpitat\w*|\bpalpitaciones\b|\bcorazon "
        r"(?:me )?(?:acelerado|late (?:muy )?(?:rapido|fuerte|raro))\b|\bheart (?:is )?(?:beating|going) (?:so |really |very )?fast\b|\bheart flutter\w*|\birregular heart\w*",
    ),
    (
        "headache",
        r"\bhead ?aches?\b|\bhead (?:hurts|is pounding|is killing me|pain)\b|\bmigraine\w*"
        r"|\bdolor(?:es)? de cabeza\b|\bme duele la cabeza\b|\bjaqueca\w*|\bmigrana\w*",
    ),
    (
        "numbness",
        r"\bnumb(?:ness|ing|ed)?\b|\btingl\w*|\bpins and needles\b|\bneuropath\w*|\bhormigue\w*|\bentumid\w*"
        r"|\badormecid\w*|\bpiquetitos\b|\bse me (?:duermen|adormecen|entumen) (?:los|las|mis)\b|\bcant feel my (?:fingers|toes|feet|hands)\b",
    ),
    (
        "rash",
        r"\brash\w*|\bhives\b|\bitch\w*|\bbumps\b|\bbreak ?out\b|\bbroke out\b|\bbreaking out\b|\bacne\b|\bpimples\b"
        r"|\bsarpullido\b|\bsalpullido\b|\bronchas?\b|\berupcion\w*|\bgranitos?\b|\bgranos\b|\bcomezon\b|\bpicazon\b"
        r"|\bme pica\w*|\bred spots\b|\bskin (?:is |feels )?(?:burning|red|irritated|peeling|dry and cracked)\b"
        r"|\bpiel (?:roja|irritada|reseca)\b|\bdry skin\b|\bpiel seca\b",
    ),
    (
        "constipation",
        r"\bconstipat\w*|\bcant (?:poop|go to the bathroom|have a bowel)\b|\bno bowel movement\w*"
        r"|\bhavent (?:pooped|gone|had a bowel)\w*|\bestre[nñ]i\w*|\bno (?:puedo|he podido) (?:ir al"
        r" bano|obrar|hacer del bano)\b|\bblocked up\b|\bno (?:he|ha) (?:ido|podido ir) al bano\b",
    ),
    (
        "appetite",
        r"\b(?:no|lost|losing|lose|poor|loss of|decreased|low|zero|without) (?:my )?appetite\b|\bcant eat\b"
        r"|\b(?:no tengo|sin|me quitan las|no me dan) ganas de comer\b"
        r"|\bnot eating\b|\bnot hungry\b|\bno (?:tengo|me da) (?:hambre|apetito)\b|\bsin (?:hambre|apetito)\b"
        r"|\bfalta de apetito\b|\bno puedo comer\b|\bnada me sabe\b|\bcant keep food\b|\blost weight\b"
        r"|\blosing weight\b|\bweight loss\b|\b(?:dont|do not) feel like eating\b|\bno (?:me )?(?:da|dan) ganas de comer\b|\bbajando de peso\b|\bhe bajado de peso\b|\bno quiero comer\b",
    ),
    (
        "insomnia",
        r"\bcant (?:sleep|fall asleep|stay asleep)\b|\binsomnia\b|\bnot sleeping\b|\btrouble sleeping\b"
        r"|\bno puedo dormir\b|\binsomnio\b|\bup all night\b|\bno duermo\b|\bbarely sleep\w*",
    ),
    (
        "hair_loss",
        r"\bhair (?:is |keeps )?(?:falling out|loss|thinning|coming out)\b|\blos(?:ing|t|e) (?:\w+ ){0,3}hair\b"
        r"|\bbald\w*|\bse me (?:esta )?cayendo el (?:pelo|cabello)\b|\bse me cae el (?:pelo|cabello)\b"
        r"|\bcaida del (?:pelo|cabello)\b|\bhair fall\w*",
    ),
    ("cough", r"\bcough\w*|\btos\b|\btosiendo\b|\btoso\b"),
    (
        "jaundice",
        r"\byellow\w* (?:skin|eyes)\b|\b(?:eyes|skin)(?: \w+){0,4} yellow\w*\b|\bjaundice\w*"
        r"|\b(?:ojos|piel)(?: \w+){0,2} amarill\w*|\bamarill\w* (?:los ojos|la piel)\b|\bictericia\b|\bdark (?:urine|pee)\b|\borina oscura\b",
    ),
    (
        "stomach",
        r"\bstomach (?:cramps?|ache|aches|pain|hurts|upset|is upset|issues|problems|bug)\b|\bcramp\w*"
        r"|\bbloat\w*|\bheartburn\b|\bindigestion\b|\breflux\b|\bupset stomach\b|\bbelly (?:pain|ache|hurts)\b"
        r"|\bdolor de (?:estomago|panza|barriga)\b|\bme duele (?:el estomago|la panza|la barriga)\b"
        r"|\b(?:mal|malo|mala) (?:del|de la) (?:estomago|panza|barriga|tripa)\b|\bstomach (?:is |was )?(?:bad|off|messed up)\b"
        r"|\bcolicos?\b|\bacidez\b|\bagruras\b|\bgases\b|\bretortijones\b|\btummy\b|\bcalambres?\b",
    ),
    (
        "vision",
        r"\bblurr\w* vision\b|\bvision (?:is |has been )?(?:blurr\w*|fuzzy|changes|problems)\b"
        r"|\bvista borrosa\b|\bveo borroso\b|\bcant see (?:well|clearly|right)\b|\bseeing spots\b"
        r"|\b(?:seeing|see) double\b|\bdouble vision\b|\beyes (?:are |keep )?water\w*|\bwatery eyes\b|\bojos llorosos\b"
        r"|\blagrimeo\b|\bveo doble\b",
    ),
    (
        "mood",
        r"\bdepress\w*|\banxious\b|\banxiety\b|\bsad all the time\b|\bdeprimid\w*|\bansiedad\b|\bnervios[oa]\b"
        r"|\bmood swings\b|\bcrying all the time\b|\birritable\b|\bcry(?:ing)? (?:a lot|all day|constantly|so much)\b"
        r"|\b(?:lloro|llorando) (?:mucho|todo el dia)\b|\btriste todo el tiempo\b",
    ),
    (
        "infection",
        r"\bsore throat\b|\brunny nose\b|\bburn\w* when i (?:pee|urinate)\b|\bpainful urination\b"
        r"|\bdolor de garganta\b|\binfection\w*|\binfeccion\w*|\buti\b|\bcold sores?\b|\bpneumonia\b|\bneumonia\b"
        r"|\b(?:a|bad|head|chest|nasty|terrible) cold\b|\bcaught (?:a|the) (?:cold|flu|bug)\b|\bthe flu\b|\bcovid\b"
        r"|\bresfriad[oa]\b|\bgrip[ae]\b|\b(?:arde|ardor|dolor|duele) al orinar\b|\bburning (?:urine|urination|pee)\b",
    ),
    (
        "taste",
        r"\b(?:everything |food )?tastes? (?:like \w+|funny|weird|bad|metallic|off|strange|different|bland)\b|\bmetallic taste\b|\b(?:bad|weird|funny|strange|bitter|awful|nasty|horrible|metal) taste\b"
        r"|\blost my (?:sense of )?taste\b|\bsabor (?:metalico|raro|feo)\b|\bno (?:le )?siento (?:el )?sabor\b"
        r"|\bcant taste\b|\bno taste\b|\bsin sabor\b|\bfood tastes\b"
        r"|\b(?:todo |la comida )?me sabe (?:feo|raro|mal|a metal|amargo|salado)\b",
    ),
    (
        "pain",
        rf"\b{_HURT}\b|\bpains\b|\bachy\b|\bsoreness\b|\bcramping\b|\bdolor\w*|\bduel[ea]n?\b|\badolorid\w*"
        rf"|\bme duele\w*|\bjoint\w* (?:pain|hurt\w*)\b|\bback (?:pain|hurts)\b|\bmuscle (?:pain|aches?)\b",
    ),
    (
        "blood_pressure",
        r"\bblood pressure (?:\w+ ){0,3}(?:high|up|elevated|low|through the roof|crazy|spik\w*)\b|\bhigh blood"
        r" pressure\b|\bhypertension\b|\bpresion (?:\w+ ){0,2}(?:alta|baja|subio|elevada)\b|\bbp (?:is )?(?:high|up)\b",
    ),
    ("blisters", r"\bblister\w*|\bampollas?\b"),
    (
        "blood_sugar",
        r"\bblood sugars?\b|\bglucose\b|\bsugars? (?:is |are |has been |have been )?(?:high|up|low)\b|\bazucar (?:\w+ )?"
        r"(?:alta|elevada|baja|subio)\b|\bdiabet\w*",
    ),
    ("hiccups", r"\bhiccup\w*|\bhipo\b"),
    ("dehydration", r"\bdehydrat\w*|\bdeshidrat\w*|\bvery thirsty\b|\bmucha sed\b"),
    (
        "sun",
        r"\bsunburn\w*|\bburn\w* (?:\w+ )?(?:easily )?in the sun\b|\bsun sensitiv\w*|\bsensitive to (?:the )?sun\b"
        r"|\bme quemo con el sol\b",
    ),
    ("other", rf"\b{_BODY}(?: \w+){{0,4}} {_BAD}\b|\b{_BAD}(?: \w+){{0,2}} {_BODY}\b"),
    (
        "unwell",
        r"\bfeel\w* (?:so |really |very |pretty |kinda |kind of |too |super |extremely )?(?:sick|awful|terrible|horrible|lousy|"
        r"crappy|like crap|like garbage|unwell|poorly|worse|rough|rotten|miserable)\b|\bnot feeling (?:well|"
        r"good|great|so good)\b|\bdont feel (?:well|good)\b|\bside effects?\b|\breaction\b|\bme siento (?:muy |"
        r"bien )?(?:mal|fatal|peor|enferm[oa]|malita|malito)\b|\bme cae mal\b|\bme hace (?:dano|mal)\b"
        r"|\bno me siento bien\b|\befectos? secundarios?\b|\bmaking me sick\b|\bunder the weather\b",
    ),
)


# Stated severity, checked in this order: the first alternative found at the earliest place wins.
SEVERITY_PATTERNS: tuple[tuple[str, str], ...] = (
    # a CTCAE grade stated by a nurse or a caregiver ("Eritema palmar sin dolor, grado 1")
    ("mild", r"\bgrad[eo] (?:1|one|uno|i)\b"),
    ("moderate", r"\bgrad[eo] (?:2|two|dos|ii)\b"),
    ("severe", r"\bgrad[eo] (?:3|three|tres|iii)\b"),
    ("very_severe", r"\bgrad[eo] (?:4|four|cuatro|iv)\b"),
    (
        "mild",
        r"\bnot (?:too |that |so |very |really )?(?:bad|severe|terrible)\b|\bno (?:tan|muy) (?:mal|fuerte)\b",
    ),
    (
        "none",
        r"^(?:none|zero|cero|ninguno|ninguna|nada|nothing|no|not at all|all good|0)\b"
        r"|\bya estoy bien\b|\b(?:its|it is) gone\b|\bno (?:pain|symptoms)\b",
    ),
    (
        "very_severe",
        r"(?<!\bat )(?<!\bits )\bworst\b|\bunbearabl\w*|\bexcruciating\b|\bcant (?:take|stand|bear|handle) (?:it|this)"
        r"\b|\bvery (?:very )?severe\b|\bextremely severe\b|\binsoportable\b|\bmuy sever[oa]"
        r"\b|\blo peor\b|\bel peor\b|\bagoniz\w*|\bintolerable\b|\b10 out of 10\b|\bmuy muy\b"
        r"|\bterriblemente\b|\bunable to function\b|\b(?:ya )?no (?:aguanto|soporto)\b|\bya no puedo (?:mas|con)\b",
    ),
    (
        "severe",
        r"\bextrem\w*|\bterribly\b|\bsevere\w*|\breally bad\b|\bvery bad\b|\bso bad\b|\bterrible\b|\bhorribl\w*|\bawful\b"
        r"|\bintense\b|\bcant (?:eat|walk|sleep|work|function|get out of bed)\b|\bkilling me\b"
        r"|\b(?:barely|hardly) (?:walk|eat|move|stand|sleep|function|get up)\b"
        r"|\bmuy fuerte\b|\bsever[oa]s?\b|\bgrave\b|\b(?:muy|bien|super) mal[oa]?\b|\bmucho dolor\b|\bsuper bad\b"
        r"|\breal bad\b|\bfatal\b|\bbien fuerte\b|\bhorrible\b"
        r"|\bhorrendous\b|\bbrutal\b|\bcant keep (?:anything|food) down\b|\bno puedo (?:comer|caminar)\b"
        r"|\bbad bad\b|\breally (?:painful|rough)\b|\btoo much\b|\bvery painful\b",
    ),
    (
        "moderate",
        r"\bmoderat\w*|\bpretty bad\b|\bquite bad\b|\bfairly bad\b|\bmedium\b|\bso so\b|\bmiddling\b"
        r"|\bmoderad[oa]\b|\bregular\b|\bmas o menos\b|(?<!\by )\bmedio\b|\bbad\b|\bbastante\b|\brough\b|\bfuerte\b"
        r"|\bok(?:ay)?ish\b|\bin between\b|\bsomewhat\b",
    ),
    (
        "mild",
        r"\bmild\w*|\bslight\w*|\ba (?:little|tiny|wee)(?: bit)?\b|\ba bit\b|\bminor\b|\bbarely\b|\blight\b"
        r"|\blittle bit\b|\bmanageable\b|\btolerable\b|\bleve\w*|\bpoquit[oa]\b|\bun poco\b|\bliger[oa]\b|\bnot much\b"
        r"|\bjust a little\b|\bnothing major\b|\bsmall\b|\bbearable\b|\bnothing serious\b|\bnada (?:grave|serio)\b"
        r"|\bpoc[oa]s?\b|\bno es grave\b|\bnothing (?:crazy|big|too bad|terrible|awful|major|huge)\b",
    ),
)

# Words that negate what follows them in the same clause ("no nausea", "sin dolor", "never had a fever").
NEGATORS: frozenset[str] = frozenset(
    """
    no not dont didnt doesnt havent hasnt hadnt never without sin nunca ni nor neither none nothing
    denies deny isnt wasnt arent werent nada zero ningun ninguna ninguno aren wont
    """.split()
)
# Words right after a negator that cancel it ("not sure if it's a fever", "no se si tengo fiebre").
NEGATION_BREAKERS: frozenset[str] = frozenset(
    """
    sure know think certain se idea better improvement stop stopping end ending matter joke puedo
    puede can cant quiero one wonder help helps helping works working relief change way le me mejora
    ayuda aguanto aguanta soporto soporta stand bear
    deja dejan dejaba para paran paraba paro quita quitan quitaba
    """.split()
)
# Words that close a negation's scope (besides clause punctuation).
BOUNDARY_WORDS: frozenset[str] = frozenset(
    """
    but pero just only though although aunque sino except however and y still todavia aun now ahora
    solo nomas also tambien because so then which que when cuando since desde
    """.split()
)
# A clause that only imagines a symptom or a missed dose ("what if I throw up", "si vomito").
HYPOTHETICAL_PATTERN: str = (
    r"\b(?:if|what if|in case|incase|whether|por si|en caso de|unless|avoid|prevent|ways to|how to|worried about"
    r"|que hago si|que pasa si|si(?= (?:me |se me |la |lo |no )?(?:vomit|olvid|pierd|dej|salt|tom|sient|tengo)))"
    r"(?= |$)"
    # a possible future effect ("will I lose my hair?", "does it cause diarrhea?", "¿me va a dar diarrea?")
    r"|\bwill (?:i|it|this|that|these|the \w+|my \w+) (?:\w+ )?(?:lose|get|cause|give|make|happen)\b"
    # "will my hair fall out?": the cue ends before the hair, so the hair is imagined, not reported
    r"|\bwill (?:my|the|his|her) (?=(?:hair|eyebrows|eyelashes|nails|pelo) (?:\w+ )?(?:fall|thin|come|start|turn|fall out)\b)"
    r"|\b(?:does|do|can|could|would) (?:it|this|that|these|they|the \w+|this \w+"
    r"|(?!(?:i|you|u|we|someone|somebody|anyone|my|me|he|she)\b)\w+) (?:\w+ )?(?:cause|give|make)\b"
    r"|\b(?:is|am) (?:it|this|i) (?:going|gonna) to (?:cause|give|make|lose|get)\b|\b(?:me|le|te) va a (?:dar|causar"
    r"|provocar)\b|\bse me va a caer\b|\b(?:va|van) a (?:dar|causar|provocar)\b"
    r"|(?<!\bme )(?<!\ble )(?<!\bte )\b(?:da|dan|causa|causan|provoca|provocan)\b(?= \w+(?: \w+)? \?)"
)
# A question about doing something ("can I stop taking it?"): what follows is not a report of having done it.
QUESTION_VERB_PATTERN: str = (
    r"\b(?:should i|can i|could i|may i|do i|is it ok to|is it okay to|is it safe to|puedo|debo|se puede"
    r"|tengo que|when do i|how long do i)\b"
)

# Idioms that use a symptom word for something else ("tired of waiting", "a pain to get there").
SYMPTOM_EXCLUSIONS: tuple[str, ...] = (
    r"\b(?:tired|sick|sick and tired|cansad[oa]) (?:of|de)\b",
    r"\ba (?:real )?pain (?:to|in the|getting|going|having)\b",
    r"\bpain in the (?:neck|butt|ass)\b",
    # a medicine named by its symptom ("¿paro la pastilla de las náuseas?", "the nausea pills"): not a report
    r"\b(?:pastillas?|medicinas?|medicamentos?|pildoras?|jarabe|capsulas?) (?:de|para) (?:la |las |el |los )?(?:nauseas?"
    r"|diarrea|vomitos?|mareos?|comezon|picazon|estrenimiento)\b(?! (?:no|ya no) (?:me )?(?:sirve|funciona|hace))"
    r"|\b(?:nausea|anti nausea|antinausea|diarrhea|itch|constipation) (?:pills?|meds?|medicines?|tablets?)\b"
    r"(?! (?:dont|do not|doesnt|does not|arent|are not|isnt|is not) (?:work|help))",
    r"\b(?:about|regarding|on|sobre|acerca de) (?:the |my |possible |any |los |sus |posibles )?(?:side effects?"
    r"|efectos secundarios)\b",
    r"\bside effects? (?:of|from) (?:the|this|that)?\s*(?:\w+ )?(?:\?|$)",
    r"\b(?:head|heading|headed) (?:to|over|out|home|back)\b",
    r"\bred (?:car|truck|shirt|bag|box|cap|lid|bottle|pill|tablet)\b",
    r"\b(?:flu|covid|shingles|pneumonia) (?:shot|vaccine|vaccination|booster|jab)s?\b|\bvacuna (?:de|contra) la (?:gripe|influenza)\b",
    r"\bblood (?:tests?|testing|work|draws?|counts?|results?|panels?|labs?)\b|\b(?:analisis|examen(?:es)?|pruebas?"
    r"|estudios?|muestras?|conteo|laboratorio|cita) de (?:la )?sangre\b",
    r"\b(?:copays?|co pays?|prices?|costs?|bills?|payments?|deductibles?|it|this|that)(?: \w+){0,2} (?:is |are )?killing me\b",
)
# After a symptom in the same clause: it is over ("the nausea is better now", "rash is gone", "ya se me quitó").
RESOLVED_PATTERN: str = (
    r"\b(?:is|are|has|have|got|getting|feels?|feeling|much|a lot|way|seems?|ya|mucho|esta|estan) (?:\w+ )?"
    r"(?:better|gone|improv\w*|resolved|healed|cleared up|mejor|mejorando|curad[oa]|quitad[oa])\b"
    r"|\b(?:went|gone) away\b|(?<!\bwill )(?<!\bever )(?<!\bgonna )(?<!\bto )(?<!\bit )(?<!\bthing )\bgoes away\b|\bcleared up\b|\bse (?:me )?(?:quit|fue|paso|curo)\w*|\bno longer\b"
    r"|\bis over\b|(?<!\bi )(?<!\bwe )(?<!\bhe )(?<!\bshe )(?<!\bso i )(?<!\bthey )\bstopped\b(?! (?:taking|it|them|the|my|his|her)\b)"
    r"|\bdisappeared\b|\bdesaparecio\b"
)
