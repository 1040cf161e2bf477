"""Intent lexicon: phrase patterns per label, yes/no/thanks words and language markers, English and Spanish.

Patterns match the normalised text (see conversations.normalize): lower case, no accents or apostrophes
("cant", "dont", "wont"), shorthand expanded ("meds" -> "medicine", "im" -> "i am").
"""

from __future__ import annotations

__all__ = [
    "ACK_WORDS",
    "EN_MARKERS",
    "ES_MARKERS",
    "FINE_PATTERNS",
    "INTENT_PATTERNS",
    "NO_WORDS",
    "REPLY_FILLERS",
    "AGREE_PATTERN",
    "TAPBACK_PATTERN",
    "UNSURE_PATTERN",
    "YES_WORDS",
]

_DRUGS = (
    r"(?:xeloda|capecitabine|zytiga|abiraterone|imbruvica|ibrutinib|ibrance|palbociclib|xtandi|enzalutamide"
    r"|revlimid|lenalidomide|lynparza|olaparib|methotrexate|humira|xeljanz|tofacitinib|temodar|gleevec|imatinib"
    r"|tamoxifen|letrozole|anastrozole|kisqali|verzenio|tagrisso|lonsurf|stivarga|erleada|nubeqa|calquence"
    r"|venclexta|pomalyst|jakafi|sutent|lenvima|cabometyx)"
)
_SUPPLY = (
    rf"(?:refills?|prescriptions?|medicine|pills?|tablets?|capsules?|supply|bottle|fill|order|shipment|package"
    rf"|dose pack|cycle|round|batch|month s supply|{_DRUGS}|receta|medicina|pastillas?|resurtido|surtido"
    rf"|pedido|paquete|ciclo)"
)
_DAY = (
    r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tues|wed|thurs|fri|sat|sun|weekend|lunes"
    r"|martes|miercoles|jueves|viernes|sabado|domingo|fin de semana)"
)
_WHEN = (
    rf"(?:later|tomorrow|tonight|next week|next month|another (?:time|day)|in (?:a|an|\d+|a few|a couple of?) "
    rf"(?:hours?|days?|while|bit|weeks?)|(?:on |next |this )?{_DAY}|after (?:\d+|work|lunch|my \w+|that|then|the \d+|\w+day)|before (?:that|then)|this "
    rf"(?:evening|afternoon|weekend)|end of the (?:week|month)|first of the month|on the \d{{1,2}}|(?:the )?\d{{1,2}} (?:st|nd|rd|th)|el \d{{1,2}} de \w+|mas tarde|luego|manana|despues"
    rf"|la (?:proxima|otra) semana|otro dia|el {_DAY})"
)

INTENT_PATTERNS: dict[str, tuple[str, ...]] = {
    "refill_request": (
        r"\b(?:stop|come|swing|drop|pass) by\b(?: \w+){0,4} (?:pick ?up|get|grab|collect)\b|\bfor (?:a )?pick ?up\b",
        r"\b(?:ran|run|running|runs) out\b|\b(?:am|are|all|completely|totally|is|were) out of (?:my |the |his |her )?(?:pills"
        r"|medicine|meds|medication|tablets|capsules|it|them)\b|\b(?:all|completely|totally|im|i am) out of (?:my|his|her)"
        r" \w+\b|^out of (?:my |the )?(?:pills|medicine|meds|tablets|capsules)"
        r"\b|\bse (?:me |le |nos )?(?:acab|termin)(?:o|aron)\b|\b(?:ill|i will|gonna|going to|be) be out\b"
        r"|\b(?:took|take|taking|tome|se tomo) (?:my|his|her|the|la|su|mi) (?:last|ultima)\b|\bme quede sin\b",
        r"\b(?:never|didnt|did not|havent|have not|still (?:havent|have not|didnt)) (?:got|get|gotten|received|receive)"
        r" (?:my|the|our) (?:delivery|package|pills|medicine|order|refill|shipment)\b"
        r"|\b(?:can|could|would|will) you (?:please )?(?:mail|send|ship|deliver|bring|drop off) (?:it|them|me|those)\b|\bwhere is my (?:delivery|package"
        r"|order|refill|medicine)\b|\bpick (?:it|them) up\b|\bcome (?:by|in) (?:to|and) (?:get|pick)\b",
        rf"\b(?:need|needs|want|would like|like|ready for|time for|time to|order|request|get|send|ship|deliver"
        rf"|mail|pick up|pickup|pick|reorder|re order|renew|refill|fill|come get|grab|stop by for)\b(?: \w+)"
        rf"{{0,4}} {_SUPPLY}\b",
        r"(?<!cancel my )(?<!cancel the )(?<!cancel this )\brefills?\b(?! (?:it|them|that)\b)",
        r"\b(?:almost|nearly|running|run|going to run|about to run|gonna run) (?:out|low)\b|\blow on\b",
        r"\bdown to (?:my |the )?(?:last )?(?:\d+|one|two|three|four|five|a few|a couple|my last)\b|\blast (?:\d+|few"
        r"|couple|two|three|four|five) (?:pills|doses|tablets|capsules)\b|\b(?:order|send|get|ship|need|want)"
        r" (?:some )?more\b",
        r"\b(?:ran|run) out\b|\bout of (?:my |the )?(?:pills|medicine|tablets|capsules|it|them|\w+ pills)\b",
        r"\b(?:only|just) (?:\w+ ){0,2}(?:\d+|one|two|three|four|five|a few|a couple) (?:\w+ )?(?:pills?|"
        r"tablets?|days?|doses?|capsules?) (?:left|remaining)\b",
        r"\b(?:[1-5]|one|two|three|four|five|a few|a couple) (?:more )?(?:pills?|tablets?|days?|doses?|capsules?)"
        r" (?:left|remaining)\b|\b(?:only|just) (?:have |got )?(?:[1-9]|one|two|three|four|five|a few|a couple)"
        r" (?:more )?(?:left|remaining)\b",
        r"\blast (?:pill|dose|tablet|bottle)\b|\bnext (?:bottle|month s supply|months supply|shipment|fill)\b",
        r"\bneed (?:more|another)\b|\bstill need it\b",
        r"\b(?:necesito|quiero|ocupo|ocupa|necesita) (?:surtir|resurtir|pedir|mas|mi|mis|otra|otro|la|el|las|los"
        r"|unas|su|sus) (?:\w+ )?(?:receta|"
        r"medicina|pastillas?|resurtido|medicamento|caja|frasco|pedido)?\b",
        r"\bsurt\w*|\bresurt\w*|\bme quedan (?:pocas|poquitas|\d+|dos|tres|cuatro|cinco|unas)\b"
        r"|\b(?:casi )?no (?:me )?quedan\b|\bquedan pocas\b|\bme faltan (?:\w+ )?(?:pastillas|medicina|dosis|tabletas)\b"
        r"|\bno me alcanzan? (?:las|la|mis) (?:pastillas|medicina|tabletas)\b",
        r"\bse me (?:estan |van a )?acab\w*|\bse me (?:esta |estan |va a |van a )?(?:termina|terminan|terminando)\b"
        r"|\bcasi se me (?:acab|termin)\w*|\bcasi (?:no tengo|se me acab\w*)|\bya no tengo (?:pastillas|medicina)\b",
        r"\b(?:mandenme|envienme|mandarme|enviarme|mandar|enviar|enviarla|mandarla|recoger|pasar por)\b(?: \w+)"
        r"{0,3} (?:mas|medicina|pastillas|receta|resurtido|casa|medicamento)\b",
        r"\bquiero pedir\b|\bpedir mi (?:medicina|receta)\b|\bre ?order\w*",
    ),
    "missed_dose": (
        r"\b(?:missed|miss|missing|skipped|skip|skipping|forgot|forget|forgetting|forgotten)\b(?: \w+){0,3} "
        r"(?:doses?|pills?|medicine|it|them|tablets?|capsules?|a day|days?|yesterday|today|morning|mornings"
        r"|evening|night|last night|this morning|\d+|one|two|three|a couple|a few|several|weekend|to take"
        rf"|my|{_DRUGS}|{_DAY})\b",
        r"\b(?:didnt|did not|havent|have not|hasnt|has not|wasnt able to|couldnt|could not|not been) (?:\w+ )?"
        r"(?:take|taken|taking|took)\b(?: (?:it|them|my|the|any|a|one|\w+ dose))?",
        r"\b(?:stopped|quit|held|paused|holding|pausing) (?:taking |using )?(?:it|them|my|the|this|taking|those)\b"
        r"(?! (?:job|work|smoking|drinking|coffee|alcohol|gym)\b)"
        r"|\b(?:told|said|asked|wants|want) (?:me )?to (?:stop|hold|pause|quit) (?:taking |the |my |it|them)",
        r"\bhad to stop\b|\b(?:been|was|went|were|am|have been) off (?:it|them|my|the)\b|\bhavent been taking\b|\bnot taking (?:it|them|my)\b",
        # out of it for some time ("ran out 3 days ago", "no pills since Monday"); out now is a refill request
        r"\b(?:ran|run|been|was|were|went) (?:out|without)\b(?: \w+){0,4} (?:ago|since|for (?:a|\d+|two|three|four|five"
        r"|several|a few|the (?:last|past))|(?:a |\d+ |two |three |four |five |several |a few )(?:days?|weeks?))\b"
        r"|\b(?:\d+|two|three|four|five|a few|several|couple of?) (?:days?|weeks?) (?:without|with no|w/o|out of)\b"
        r"|\b(?:no|without) (?:pills|meds|medicine|medication)\b(?: \w+){0,2} (?:since|for)\b"
        r"|\bse me (?:acab|termin)\w* (?:hace|desde)\b|\b(?:llevo|lleva|llevamos|tengo|tiene) (?:\w+ ){0,2}(?:dias?|semanas?)"
        r" sin\b|\b(?:\w+ )?dias sin (?:pastillas|medicina|tomar\w*)\b|\bsin (?:pastillas|medicina) desde\b"
        r"|\bno tengo (?:pastillas|medicina) desde\b|\bno (?:he|ha) tenido (?:pastillas|medicina)\b"
        # "I am not take the medicine since Friday because it finish", "haven't gotten my medicine, it's been 5 days"
        r"|\bnot (?:take|taken|took|taking|have|had) (?:my |the |his |her |it|them|\w+ ){0,2}since\b"
        r"|\b(?:havent|have not|hasnt|has not|not) (?:gotten|got|received|had) (?:my |the |his |her )?(?:medicine|meds"
        r"|pills|refill|delivery|package|medication)(?: \S+){0,4} (?:its been|it has been|been|for) (?:\d+|a few|several"
        r"|two|three|four|five|a couple of) days\b",
        r"\btook (?:it|them|my (?:pill|dose|meds|medicine)) (?:\w+ ){0,3}late\b|\b(?:dont|do not|doesnt) always"
        r" (?:remember|take)\b|\bme (?:la|lo) tome tarde\b|\ba veces se me (?:olvida|pasa)\b",
        r"\bse me (?:olvid\w*|paso)\b|\bolvid[eo]\w*|\bno (?:me )?(?:la |lo |las |los )?(?:he |e )?(?:tom\w*)\b",
        r"\bdeje de (?:tomar\w*|usar\w*)\b|\bme (?:la |lo |las )?salte\b|\bsalte (?:\w+ )?(?:dosis|pastillas?)\b",
        r"\bno (?:la |lo )?tome\b|\bsin tomar\w*|\bsuspendi\b|\bdeje (?:\w+ ){0,2}dosis\b|\bperdi (?:\w+ )?dosis\b",
    ),
    "cost_concern": (
        r"\bafford\w*|\b(?:cant|cannot|unable to|not able to|wont be able to) pay\b|\bhow (?:ill|i will|will i|am i"
        r"|do i|can i|would i|i am going to|i would) (?:\w+ )?(?:pay|afford)\b",
        r"\b(?:\d+|it|that|this|cost|price|copay|bill) (?:is |are |was |s )?(?:way |far |just |a bit |really |so )?"
        r"too (?:much|high|steep|expensive)\b|\btoo (?:expensive|pricey|costly)\b|\bexpensive\b|\bpricey\b"
        r"|\bcostly\b|\bcosts? (?:a fortune|too much|so much|an arm)\b|\bfortune\b",
        r"\bco ?pays?\b|\bdeductible\b|\bcoupons?\b|\b(?:copay|co pay|savings|discount|manufacturer) cards?\b"
        r"|\bgenerics?\b|\bgeneric\w*|\bcheaper\b|\bless expensive\b|\bmas barat[oa]\b|\bgeneric[oa]s?\b"
        r"|\b(?:lost|lose|losing|no|dont have|without|no longer have) (?:my |any )?(?:insurance|coverage)\b|\buninsured\b"
        r"|\bno (?:more|longer any) (?:insurance|coverage)\b|\b(?:cancel+ed|terminated|ended|dropped) (?:my |our |her |his )?"
        r"(?:insurance|coverage|plan)\b|\b(?:insurance|coverage|seguro)(?: \w+){0,3} (?:expired|ran out|se (?:le |me )?venci\w*)\b"
        r"|\bya no (?:tengo|tiene|tenemos) (?:seguro|obamacare|medicaid|medicare|aseguranza)\b|\bme dieron de baja del"
        r" (?:seguro|plan|medicaid|obamacare)\b|\bno tengo seguro\b|\bsin seguro\b|\bperdi (?:mi|el) seguro\b|\bassistance\b|\bprograms? (?:to|that) help\b|\bhelp programs?\b|\bprogramas? de (?:ayuda|asistencia)\b"
        r"|\bayuda (?:financiera|economica)\b|\bfundacion\b|\bfinancial\w*|\bpayment plan\b|\bgrant\b|\bfoundation\b|\bout of pocket\b",
        r"\bhelp (?:paying|to pay)\b|\bcant (?:swing|cover|come up with|manage|handle|do|pay) (?:\w+ )?\d+"
        r"|\bhelp (?:with|paying|to pay|w)(?: for)?(?: the| my| this)? (?:cost|copay|bill|it|this|medicine|price|"
        r"payment|paying)\b",
        r"\b(?:insurance|plan|part d|medicare|medicaid|coverage|insurer)(?: \w+){0,2} (?:denied|deny|wont|doesnt|does not"
        r"|changed|dropped|declined|rejected|lapsed|not cover\w*|cover|refuses?|stopped|will not)\b|\bdonut hole\b"
        r"|\b(?:insurance|plan|medicare|medicaid|part d|insurer)(?: \w+){0,2} (?:approv\w*|authoriz\w*|go through|went through"
        r"|pay for)\b|\b(?:seguro|aseguranza|medicare|medicaid)(?: \w+){0,2} (?:aprob\w*|autoriz\w*)\b"
        r"|\bcoverage gap\b|\bwont pay\b|\bnot covered\b|\b(?:doesnt|does not|wont|will not|no longer) cover\w*",
        r"\bdenied\b|\bprior auth\w*|\bmoney\b|\b(?:the|my|a|this|medical) bills?\b|\bdollars?\b|\bbucks\b"
        r"|\bhow much (?:is|does|will|would|do|am)\b(?: \w+){0,4} (?:cost|pay|owe|be|charge)\b|\bcost\w*\b"
        r"|\bprice\w*\b|\bowe\b|\blost my job\b|\bon a fixed income\b|\bbroke\b|\btight on money\b|\bmoney is tight\b",
        r"\bseguro(?: \w+){0,2} (?:rechaz\w*|nego|no (?:la |lo )?(?:quiere|quiso) (?:cubrir|pagar)|no (?:la |lo )?paga)\b"
        r"|\bno (?:puedo|podemos|tengo para) pagar\w*|\bno (?:me )?alcanza\b|\b(?:muy|esta|estan|es|son|bien|tan|demasiado|super|re|mas|salio|sale|sigue|que) car(?:o|a|os|as)\b"
        r"|\bcar(?:o|a|os|as) (?:la|el|las|los|mi|mis|esta|este) (?:medicina|pastillas?|receta|copago|medicamento)\b"
        r"|\bcarisim[oa]s?\b|\bcuesta\w*|\bcuanto (?:es|sale"
        r"|cobran|voy a pagar|tengo que pagar|debo)\b|\bcopago\b|\bdeducible\b|\bseguro (?:\w+ ){0,2}(?:no|ya no)"
        r" (?:me )?(?:la |lo )?cubre\b|\bno (?:me )?(?:la |lo )?cubre\b|\bayuda (?:para|con) (?:pagar|el (?:pago|"
        r"copago|costo))\b|\bdinero\b|\bcupon\w*|\bcosto\w*|\bprecio\b|\bpagar\b|\bdolares\b|\bplan de pagos\b",
    ),
    "call_request": (
        r"\b(?:call|phone|ring) (?:me|us|my (?:cell|phone|house|home|number)|him|her|back)\b|\bgive (?:me|us|him|her|them|my \w+|\w+) a (?:call|"
        r"ring|buzz|phone call)\b|\bllam\w* (?:pa tras|patras|para atras|de regreso|de vuelta)\b|\bcall(?: me)? back\b|\bcallback\b|\bcall me at\b|^(?:please |pls )?call(?: please| pls| asap)?\s*[.!]*$",
        r"\b(?:talk|speak|chat) (?:to|with) (?:a |the |an |my |your )?(?:someone|somebody|real|actual|live|"
        r"pharmacist|nurse|doctor|person|human|anyone|staff|provider|oncologist|team)\b",
        r"\b(?:have|can|could|ask|would|will) (?:the |a |my |your )?(?:pharmacist|nurse|doctor|someone|somebody|"
        r"anyone|provider) (?:please )?(?:call|contact|reach|phone)\b|\breach me at\b|\b(?:real|live) person\b"
        r"|\b(?:like|want|need|request|get) a (?:call|phone call|callback|call back)\b|\ba call from\b"
        r"|\bcall (?:my|his|her) (?:daughter|son|wife|husband|caregiver|mom|dad|mother|father|sister|brother|nurse"
        r"|doctor|niece|nephew|grandson|granddaughter|cell|friend)\b|\bneed to talk\b|\bcan we talk\b|\b(?:ill|i will|i am going to|gonna|i can) (?:call|phone|ring)"
        r" (?:you|the pharmacy|back|there)\b",
        r"\b(?:que )?me (?:llame|llamen|marque|marquen|hable|hablen)\b|\bllam\w* (?:me|por favor|cuando)\b|\bllamenme\b|\bllameme\b|\bllamame\b|\bhablenme\b|\bhableme\b|\bhablame\b"
        r"|\b(?:talk|speak|chat) (?:on|over|by) the phone\b|\b(?:rather|prefer to|prefer) (?:talk|speak|a call|call)\b"
        r"|\b(?:llamen|llame|marquen|marque|hablen|hable|llamar|marcar|hablarle) (?:a|al) (?:mi|su|la|el|\d)\w*|\bme (?:pueden|puede|podrian|"
        r"podria) (?:llamar|hablar|marcar)\b|\bhablar con (?:alguien|el|la|un|una|farmaceutic\w*|enfermer\w*|"
        r"doctor\w*|una persona)\b|\bmarquenme\b|\bcomuniquense conmigo\b|\bquiero hablar\b|\bnecesito hablar\b",
    ),
    "question": (
        r"\b(?:not sure|unsure|dont know|do not know|wondering|wonder|curious|cant remember|dont remember|forgot"
        r"|no recuerdo|no me acuerdo) (?:if|whether|how|what|when|why|where|which|about|si)\b|\b(?:i have a|quick|one more|a) question\b|\bquestions? (?:about|on|for)\b",
        r"\b(?:wants?|wanted|like|need|needs|would like) to know (?:if|whether|how|what|when|why|where|which|about)\b"
        r"|\b(?:quiere|queria|quisiera|quiero|queremos) saber (?:si|como|cuando|que|cuanto|cuantas|donde|por que)\b"
        r"|\b(?:does|did|will|would|should) (?:that|this|it|the (?:medicine|pill|pills|drug|dose|chemo|treatment))"
        r" (?:change|affect|matter|interact|interfere|hurt|cause|mess|make|work|help|be|count|mean)\b",
        r"^is (?:\w+ ){1,3}(?:ok|okay|safe|fine|alright|allowed)\s*(?:[?.!]|$)|\bque efectos? (?:tiene|puede|da|causa)\b",
        r"\b(?:should i|can i|could i|may i|do i need|do i have to|am i supposed)\b|\bis (?:that|this) (?:ok|okay"
        r"|normal|bad|safe|dangerous|serious)\b|\bis it (?:ok|okay|safe|normal|fine|alright|bad|possible|true)\b|\bconfus\w* (?:about|by|with|on)\b"
        r"|\bis (?:\w+ ){1,2}(?:ok|okay|safe|fine|alright|bad) (?:with|on|to|for|while)\b|\b(?:ok|okay|safe|fine)"
        r" to (?:take|eat|drink|have|use|mix|crush|split|skip|stop)\b",
        r"\b(?:tengo una|una) pregunta\b|\bno se (?:si|como|cuando|cuanto|que|cuantas)\b|\bes normal\b"
        r"|\bes seguro\b|\bse puede\b|\bquisiera saber\b",
        r"\bwhat (?:happens|should i|do i|if|time|can|is the|are the)\b|\bhow (?:long|many|much|often|should|do i|"
        r"do you|can)\b|\bwhen (?:should|do|can|is|will)\b",
    ),
    "reschedule": (
        rf"^(?:please )?(?:deliver|send|ship|bring|mail|mandar|enviar|mandenlo|mandenla|envienlo|envienla)"
        rf"(?: it| them| my \w+| the \w+)?(?: \w+){{0,2}} {_WHEN}\b|\b(?:{_WHEN}|\d+/\d+) (?:works|would work|is good"
        rf"|is fine|is better|sounds good|is ok|esta bien|me queda bien)\b",
        rf"\b(?:cant|can not|wont be able to|unable to|not able to|wont|will not) (?:come|make it|pick (?:it |them )?up"
        rf"|get there|be there|come in|stop by)(?: \w+){{0,3}} (?:until|till|before|after|{_WHEN})\b"
        rf"|\bno (?:puedo|podre|voy a poder) (?:ir|pasar|recoger\w*)(?: \w+){{0,3}} (?:hasta|antes|{_WHEN})\b",
        rf"\b(?:push|move|bump)(?:ed)? (?:it|them|that|the (?:delivery|pickup|call|order|shipment))(?: back)? (?:to|until|till"
        rf"|til) {_WHEN}\b",
        r"\b(?:cancel|move|change|push back)\w* (?:my|the|our|this|his|her|mi|la|su) (?:next )?(?:appointment|visit"
        r"|pick ?up|cita|consulta)\b|\bchange (?:my|the) (?:delivery |shipping |mailing )?(?:address|date|time|day)\b|\b(?:new|different) address\b"
        r"|\bleave (?:it|them|the package|the box) (?:at|with|on|by|in)\b|\bfront (?:desk|door|porch|office)\b"
        r"|\bwith (?:my|the) (?:neighbor|doorman|concierge)\b|\bdej(?:en|e)(?:lo|la)? (?:en|con) (?:la|el|mi)\b"
        r"|\bcambi\w* (?:mi|la) direccion\b|\botra direccion\b",
        rf"\b(?:remind|text|message|contact|ask|ping|try) (?:me|us)(?: \w+){{0,2}} {_WHEN}\b",
        rf"\bhold (?:off|it|them|the (?:refill|order|delivery|shipment))(?: \w+){{0,3}} (?:until|till|til) {_WHEN}\b"
        r"|\b(?:busy|at work|in a meeting|driving|at church|at the doctor|ocupad[oa]|en el trabajo|trabajando|manejando"
        r"|en misa|en una junta|en el doctor|en la iglesia)\b(?: \S+){0,6} (?:call|text|llame\w*|marque\w*|escrib\w*"
        r"|hablamos|le (?:escribo|contesto|llamo|marco)|luego|al rato|mas tarde|later)\b",
        rf"\b(?:can|could|would|please|rather|prefer|want|like|need) (?:\w+ ){{0,3}}(?:deliver|delivery|send|ship"
        rf"|bring|mail|drop off|get)\b(?: \w+){{0,4}} {_WHEN}\b",
        rf"\b(?:deliver|delivery|send|ship|bring|mail|drop off|mandar\w*|enviar\w*|mand\w*|envi\w*|entreg\w*)\b"
        rf"(?: \w+){{0,4}} (?:{_WHEN} (?:instead|mejor)|instead|mejor)\b",
        rf"\b(?:mandenlo|mandenla|envienlo|envienla|traiganlo|traiganla|pueden (?:mandarlo|mandarla|enviarlo|enviarla|"
        rf"traerlo|traerla|entregarlo|entregarla))\b(?: \w+){{0,3}} {_WHEN}\b",
        r"\b(?:can|could) (?:we|you) (?:do|move|change|switch|push|make it|try)\b|\bmove (?:the|my|it)\b"
        r"|\breschedul\w*|\bchange (?:the |my )?(?:delivery|pick ?up|shipment|shipping)(?: \w+){0,2} to\b|\bpostpon\w*|\bpush (?:it|the \w+) back\b",
        r"\b(?:works|work|would work|would be) better\b|\b(?:\w+day|morning|afternoon|evening|time|date|week)"
        r" (?:is|would be) better\b|\bdifferent (?:day|time|date)\b",
        rf"\b{_WHEN}(?: \w+){{0,2}} instead\b|\binstead of {_WHEN}|\bmejor (?:el |la )?{_WHEN}|\b{_WHEN} mejor\b"
        rf"|\b(?:can|could) (?:it|this|the \w+) (?:come|arrive|be delivered|ship|go out)\b(?: \w+){{0,2}} (?:{_WHEN}"
        rf"|instead)\b|\btry me\b(?: \w+){{0,2}} {_WHEN}\b|\bnot a good time\b",
        rf"\b(?:wont|will not|not going to|am not going to) be (?:home|there|around|available)\b|\bnot (?:home|"
        rf"around|available) (?:on |this |until )?(?:{_DAY}|today|tomorrow|this week)\b|\bout of town\b"
        rf"|\bon vacation\b|\baway (?:until|till|this)\b"
        rf"|\b(?:i am|ill be|i will be|we are|well be|we will be|going to be) (?:traveling|travelling|away|out of state"
        rf"|out of the country)\b|\b(?:voy a estar|estare|estoy|vamos a estar) (?:de viaje|fuera|viajando)\b",
        r"\b(?:busy|at work|driving|in a meeting|at the doctor|at an appointment) (?:right now|now|today)?\b"
        r"(?=.*\b(?:later|remind|text|tomorrow|call)\b)",
        rf"\b(?:escribanme|escribeme|escribame|recuerdenme|recuerdame|avisenme|contactenme|mandenme un mensaje)"
        rf"(?: \w+){{0,2}} {_WHEN}\b|\b(?:can|could|would) you (?:come|deliver|bring|send|ship|drop|stop by)\b"
        rf"(?: \w+){{0,3}} {_WHEN}\b|\bpueden (?:venir|pasar|traer\w*|mandar\w*|enviar\w*|entregar\w*)\b(?: \w+)"
        rf"{{0,3}} {_WHEN}\b|\bno estoy (?:en casa)?\s*[,.]|\bcan (?:it|this|that) wait\b|\bwait (?:until|till)\b"
        rf"|\brecuerd\w*(?: \w+){{0,2}} (?:manana|mas tarde|luego|despues|otro dia|{_DAY})\b|\brecuerdenme\b"
        rf"|\brecuerdame\b|\bcambi\w* (?:la|el) (?:entrega|dia|fecha|cita|envio)\b|\b(?:el|la) {_DAY} mejor\b"
        rf"|\bmejor (?:el|la) {_DAY}\b|\b(?:luego|despues|mas tarde|ahorita) (?:le |les |te )?(?:contesto|respondo|escribo"
        rf"|llamo|aviso)\b|\b(?:i will|ill|i can|let me) (?:reply|text|answer|respond|write|get back)(?: to you)? later\b"
        rf"|\bget back to you\b|\bno (?:voy a estar|estare|estoy) en casa\b|\bescribanme (?:mas tarde|"
        rf"manana|luego|despues)\b|\bmas tarde\b|\botro dia\b",
    ),
    "wrong_number": (
        r"\b(?:this|that|the) (?:number|phone|cell) (?:now )?belongs to\b|\b(?:este|ese) (?:numero|telefono) (?:es|ahora"
        r" es) de (?:mi|una|un|la|el)\b",
        r"\b(?:dont|do not|never|no longer) take (?:any|this|that|these|those)(?: \w+)? (?:medication|medicine|pills|drugs?)\b"
        r"|\bnot on (?:any|this|that) (?:medication|medicine|drug)\b|\b(?:dont|do not|never) take (?:any of )?(?:that|this"
        r"|those|these)\s*(?:[.!,]|$)|\bnot my (?:meds|medicine|medication|pills|prescription)\b|\b(?:never|didnt)"
        r" (?:ordered|order|asked for) (?:anything|this|that|any)\b|\bnever (?:been )?prescribed\b|\bno tomo (?:ninguna|esa|esas) (?:medicina|pastillas?)\b",
        r"\bwrong (?:number|person|phone|guy|lady|contact|#)\b|\bnot (?:your|a|the) patient\b|\bnever (?:been|was)"
        r" (?:a|your) patient\b",
        r"\b(?:dont|do not) know (?:any|who|a |an |anyone|anybody|this person|that person|(?:any )?\w+ here)\b"
        r"|\bno (?:\w+ )?(?:lives|is) here\b|\bthere (?:is|s) no \w+ here\b|\btheres no \w+ here\b",
        r"\bthis (?:isnt|is not|aint|is no longer) \w+s? (?:phone|number|cell)\b|\bnot \w+s (?:phone|number|cell)\b"
        r"|\bno one (?:here )?(?:by|with) that name\b|\bnobody (?:here )?(?:by|with) that name\b"
        r"|\bi am not \w+ (?:and|,)|\b(?:new|changed) (?:number|owner)\b|\bnot who you think\b",
        r"\b(?:numero|telefono|celular)(?: \w+){0,2} no es (?:de|del)\b|\bno es (?:el )?(?:numero|telefono) de\b"
        r"|\b(?:have|got) the wrong \w+\s*$|\bno es mi (?:numero|telefono|celular)\b|\bnot my (?:number|phone)\b"
        r"|\b(?:dont|do not) know (?:you|u|this number|who you are)\b|^no \w+ (?:here|at this number)\b"
        r"|\bnew phone\b|\bwho dis\b|\bnumero equivocado\b|\bequivoca\w* (?:de )?(?:numero|persona)\b|\bno conozco a\b|\bno soy \w+\b"
        r"|\baqui no (?:vive|hay)\b|\bno vive aqui\b|\beste no es el (?:numero|telefono) de\b|\bse equivoc\w*"
        r"|\bequivocad[oa]s?\b|\b(?:nobody|no one|noone) (?:here|at this number|in this house|by that name)\b"
        r"|\b(?:never|nunca) (?:been|gone|used|e usado|he usado|he ido|fui) (?:to )?(?:your|this|that|esa|esta|su)"
        r" (?:pharmacy|farmacia|store)\b|\bim not (?:a|your) (?:patient|customer)\b|\bno soy (?:paciente|cliente)\b",
    ),
    "help": (
        r"\bwhat (?:is|are) (?:this|these|you)(?: \w+)?(?: service| texts| messages| about| for| number)\b",
        r"^help me\s*[!.]*$|^whats (?:this|that)\s*[?.!]*$|\bwhats (?:this|these|that)(?: \w+)? (?:about|for)\b|\bwhat is this about\b"
        r"|\bwhat is this\s*\??$|\bwhat are these\b",
        r"\bwhy (?:am i|are you) (?:getting|receiving|texting|sending)(?: me)? (?:this|these|texts|messages)\b",
        r"\bque es (?:esto|este servicio|este numero)\b|\bde que se trata\b",
        r"\bhow does this work\b|\bwhat do i (?:reply|text|say)\b|\bcomo funciona\b"
        r"|\bhow (?:do|does) (?:this|these|the) (?:\w+ ){0,2}(?:texts?|texting|messages?|thing|service) work\b",
        # not understanding the texts or the choices (LABELS.md: help)
        r"^(?:i )?(?:dont|do not|didnt|did not) (?:understand|get it|get this|get what)\b|\bi dont understand\s*[.!?]*$"
        r"|\b(?:dont|do not|didnt|did not) (?:understand|get) (?:the|this|that|these|your|what|which|how|any)"
        r"(?: \w+)? ?(?:text|texts|message|messages|question|questions|options?|choices?|numbers?|means?|it)?\b"
        r"|\bwhat (?:am i|are we|do you want me|should i|do i need to|do i have to|was i) (?:supposed to |meant to )?"
        r"(?:reply|answer|respond|say|text|send|do|pick|choose|put|write)\b|\bhow do (?:i|we) (?:answer|reply|respond"
        r"|use this|do this|pick)\b|\bwhat do (?:the )?(?:numbers?|options?|choices?|1 2 3|1 2 and 3|1 2 or 3|these"
        r" numbers) (?:mean|stand for)\b|\bwhat does (?:\d|that|this|it|the \w+|that message|this message)"
        r" (?:mean|stand for)\b|\b(?:which|what) (?:one|number|option) (?:do|should) i (?:pick|choose|send|reply"
        r"|text|put)\b|\bexplain (?:please|pls|it|this|that|the|what)\b|^explain\b|\bplain english\b"
        r"|\bsay (?:that|it) (?:again|in|more)\b|\bwhat did (?:that|the|your|this) (?:message|text) say\b"
        r"|\bim (?:so |really |kind of |kinda )?(?:lost|confused) (?:with|by|about|on) (?:the|these|this|your|all)"
        r" (?:texts?|messages?|numbers?|questions?|options?)\b|^(?:huh|wat|what|que|mande|como|eh)\s*\?*\s*$"
        r"|^\?+$",
        r"\bno (?:le )?(?:entiendo|entendi|comprendo|capto)\b|\bno se (?:que|cual|como) (?:contestar|responder"
        r"|poner|mandar|escribir|decir|hacer|numero|le pongo|significa|quiere)\b|\bque (?:numero|opcion) (?:le )?"
        r"(?:pongo|mando|escribo|marco|contesto)\b|\bcomo (?:le hago|le hago pa|hago|le contesto|contesto|respondo"
        r"|le respondo)(?: pa| para)? (?:contestar|responder|esto|el mensaje)?\b|\bque (?:quiere decir|significa"
        r"|quieren decir|significan)\b|\bno se leer\b|\bpueden escribir en (?:espanol|ingles)\b"
        r"|\b(?:en|in) (?:espanol|spanish) (?:por favor|porfa|please|pls)\b|\bme (?:lo|la) (?:explica|explican)\b"
        r"|\bme confundi\b|\bexpliqu\w+\b",
        # the choices themselves: "what's the difference between 2 and 3", "¿cuál es la diferencia entre 1 y 2?"
        r"\b(?:difference|diferencia) (?:between|entre) (?:a |an |el |la |un |una )?(?:[0-4]|one|two|three|four|zero|uno|dos"
        r"|tres|cuatro|cero|mild|moderate|severe|leve|moderad[oa]|sever[oa])\b",
    ),
    "confirm": (
        r"\b(?:refill|send|ship|fill|mail|deliver|order|process) (?:it|them|that|this one)\b|\bgo ahead\b"
        r"|\bplease do\b|\bdo it\b|\bsign me up\b|\bdo (?:the|my) (?:refill|order)\b",
        r"\b(?:mandenla|mandenlo|mandenlas|envienla|envienlo|surtanla|surtanlo|mandela|enviela|adelante|dale"
        r"|mandenmela|mandenmelo|envienmela|envienmelo|rellenenla|rellenenlo|rellenela|rellenelo|surtala|surtalo)\b",
    ),
    "discontinued": (
        r"\b(?:doctor|dr|oncologist|provider|md) (?:\w+ )?(?:switched|changed|took|stopped|discontinued|cancelled"
        r"|canceled)(?: me)? (?:me|it|my|the|this|off)\b|\bswitched me (?:to|over)\b|\btook me off\b|\bno longer (?:on|taking)"
        r" (?:it|this|that|the|my)\b|\b(?:it|this|the \w+) (?:was|has been|got) discontinued\b|\bdiscontinued\b"
        r"|\bme (?:la|lo) (?:quitaron|suspendieron|cambiaron)\b|\bya no (?:la|lo) (?:tomo|estoy tomando)\b",
    ),
    "decline": (
        r"\b(?:so|then|entonces|asi que) no\s*(?:$|[.!,;])"  # a reason, then "so no": "half a bottle left so no"
        r"|\bstill (?:have|has|got)(?: \w+){0,2} (?:plenty|enough|some|a lot|lots|left|a few|a couple|\d+|a bunch|half"
        r"|a (?:week|couple weeks|few weeks|month))\b|\b(?:have|got) (?:plenty|enough|more than enough|a lot|lots|a bunch"
        r"|a good amount|quite a few|a few weeks|several weeks)\b"
        r"|\b(?:dont|do not|wont|will not|no longer) need (?:it|any|one|a refill|refills|more|them|a fill)(?: \w+)? ?(?:yet|now|right now"
        r"|this month|thanks)?\b|\bno need\b|\bnot (?:yet|now|right now|today|needed|at this time|interested"
        r"|this time|this month)\b",
        r"\b(?:paren|dejen|deje|pare) de (?:mandar|enviar|surtir)(?:me)? (?:la|las|el|los|mi|mis) (?:medicina|pastillas"
        r"|receta|resurtido|pedido)\b|\bno me (?:manden|envien|mande|envie|surtan) (?:la|las|el|los|mas) (?:medicina"
        r"|pastillas|receta|resurtido|pedido)\b|\bstop (?:sending|shipping|mailing) (?:the|my|me the|me my) (?:medicine"
        r"|pills|refills?|medication|deliveries|shipments)\b|\b(?:dont|do not) want (?:the|this|my|these|any more|more"
        r"|another) (?:refill|pills|medicine|order|delivery|shipment|fill)\b|\b(?:take me off|cancel|stop|turn off"
        r"|unsubscribe me from|opt out of|remove me from) (?:the |my )?(?:auto ?refills?|automatic (?:refills?|deliveries)"
        r"|auto ?ship\w*|refill program)\b|\b(?:dont|do not) (?:send|ship|mail|fill|deliver)(?: me)? (?:the|my|a|any|that)"
        r"(?: \w+){0,2} (?:refill|pills|medicine|order|supply|bottle|fill)\b|\bno more (?:refills|pills|deliveries)"
        r" (?:needed|necessary|please)\b|\b(?:dont|do not|no longer) need (?:the|my|a|any|this) (?:refill|refills|pills"
        r"|medicine|delivery|order)\b",
        r"(?<!dont )(?<!do not )(?<!not )\bcancel (?:my|the|this|that) (?:refill|order|fill|delivery|shipment)\b"
        r"|\bskip (?:this|the|my) (?:fill|refill|month|one|order|time)\b|\bhold off\b|\bpassed away\b|\bdied\b"
        r"|\b(?:stop|cancel|pause|turn off) (?:my|the|all|these) (?:auto ?refills?|automatic refills?|auto ?ship\w*"
        r"|refills|deliveries|shipments)\b|\bin hospice\b|\bfallecio\b|\bmurio\b|\b(?:doctor|oncologist|dr) (?:\w+ )?(?:stopped|discontinued|cancelled)"
        r" (?:it|the|my|this)\b",
        r"\bno (?:thanks|thank you|gracias)\b|\bi am (?:good|fine|ok|all set|covered)\b|\ball set\b"
        r"|\b(?:reminders?|texts?|messages?|recordatorios?|mensajes?) (?:for|about|on|de|sobre|para) (?:my |the |that "
        r"|mi |el |la |los |las )?(?:old|other|previous|former|discontinued|viej[oa]s?|anterior)\b",
        r"\b(?:cancelen|cancele|cancela|paren|pare|detengan|detenga|suspendan|suspenda|pausen|quiten) (?:el|mi|la|este)"
        r" (?:refill|resurtido|pedido|envio|orden|surtido|auto ?refill)\b",
        r"\b(?:este mes|hoy|por ahora|ahorita|orita|por el momento) no\b(?! (?:puedo|me|se|tengo|hay))|\bahorita no\b|\bahora no\b|\b(?:aun|todavia) (?:tengo|me quedan)\b"
        r"|\btengo suficientes?\b|\bno (?:la |lo |las )?necesito\b|\bno (?:hace falta|es necesario)\b"
        r"|\bno por ahora\b|\bestoy bien\b|\bpor ahora no\b",
    ),
    "opt_in": (),
    "ack": (
        r"^(?:thanks|thank you|got it|gotcha|received|will do|noted|understood|appreciate it|roger|gracias|muchas"
        r" gracias|entendido|recibido|perfecto|mil gracias|apreciate it|appreciated|10 4|ya entendi|entendi)\b",
        r"^(?:que )?dios (?:se lo|te lo|le|se los|les) (?:pague|pagara)\b",
        r"\b(?:got|received|picked up|recibi|recogi)(?: \w+){0,2} (?:pills|medicine|package|delivery|order|refill|medicina"
        r"|pastillas|paquete|pedido)\b|\b(?:package|delivery|order|medicine|pills|it|paquete|pedido|medicina) (?:has )?"
        r"(?:arrived|came|got here|was delivered|llego)\b",
        r"\b(?:i )?(?:took|take|taking|have taken|been taking|tome|tomo|me la tome|me las tome|ya me la tome)"
        r" (?:it|them|my|all|every|the|la|las|todas|mi)\b",
        r"\b(?:is|are|feels?|feeling|much|a lot|way|got|getting|mucho|ya) (?:\w+ )?(?:better|improv\w*|mejor)\b"
        r"|\b(?:went|gone|goes) away\b|\bcleared up\b|\bis gone\b|\bse me (?:quit|fue|paso)\w*",
    ),
}

# Clauses that say "nothing to report" (a decline in a check-in, an acknowledgement otherwise).
FINE_PATTERNS: tuple[str, ...] = (
    r"^(?:none|nothing|nada|ninguno|ninguna|nothing new|nada nuevo|nothing to report|all good|todo bien|better"
    r"|much better|a lot better|feeling better|doing better|mejor|mucho mejor|me siento mejor|estoy mejor"
    r"|no problems?|no issues?|no complaints|im fine|i am fine|i am good|i am ok|all is well|doing (?:good|great|"
    r"well|fine|ok)|feeling (?:good|great|fine|ok|well)|feel (?:good|great|fine|ok)|estoy bien|me siento bien"
    r"|todo normal|sin novedad|sin problemas?|nothing at all|not a thing|nada de nada|not really|nope nothing|no nothing|same as before"
    r"|no changes?|nothing (?:else|different|unusual)|all fine|everything is (?:good|fine|ok))(?: (?:thanks|thank"
    r" you|gracias|here|so far|today|this (?:week|month|time)|at all|really|gracias a dios))*\s*(?:[,.!]|$)",
    r"\ball good\b|\btodo (?:bien|normal)\b|\bfeel(?:ing)? (?:fine|good|great|ok|well)\b|\bestoy bien\b"
    r"|\bme siento bien\b|\bno complaints\b|\bdoing (?:good|great|well|fine)\b|\btodo (?:tranquilo|en orden|igual"
    r" que siempre)\b|\bnada (?:raro|fuera de lo normal|nuevo)\b|\bnothing (?:unusual|out of the ordinary|weird)\b",
    r"\bno (?:side effects?|problems?|issues?|symptoms?|complaints|changes?)\b|\bnothing (?:new|to report|else)\b"
    r"|\bsin (?:efectos|sintomas|molestias|problemas)\b|\bningun[oa]? (?:molestia|problema|efecto|sintoma)s?\b|\bno (?:tengo|he tenido) (?:ningun|"
    r"nada|molestias|efectos|sintomas)\b",
)

YES_WORDS: frozenset[str] = frozenset(
    "andale|yes|y|yes please|sure|ok|correct|right|absolutely|definitely|of course|affirmative|confirm|"
    "afirmativo|de una|vaya|vaya pues|va pues|ta bien|sale pues|orale pues|i reckon|i reckon so|reckon so|"
    "i guess so|guess so|yessir|yes mam|yes maam please|aja|mhm|uh huh|okey|oki|okis|sip|simon que si|"
    "confirmed|yes i do|i do|si|claro|vale|va|sale|listo|correcto|asi es|por favor|"
    "yes yes|certainly|indeed|totally|surely|alright|all right|why not|thumbsup|ya|yeah sure|"
    "bueno|orale|simon|exacto|cierto|ok sure|sure thing|you bet|perfect|perfecto|yes sir|yes maam|pos si|pues si|"
    "pues claro|pos claro|si pues|shoots|sipo|simon pues|sho nuff|shonuff|sure nuff|sure enough|sho nuff cher".split("|")
)
NO_WORDS: frozenset[str] = frozenset(
    "no|n|not|never|negative|no no|nunca|para nada|no way|no sir|no maam|thumbsdown|nel|negativo|nop|nah"
    "|nada que ver|de ninguna manera|nope|mope|nooe|npoe".split("|")
)
ACK_WORDS: frozenset[str] = frozenset(
    """
    i bye goodbye adios smile ttyl cya later
    thanks thank you so much very ok got it gotcha received will do great perfect sounds good cool
    awesome appreciate noted understood roger alright all right nice wonderful excellent gracias
    muchas mil perfecto entendido recibido vale bueno listo bien excelente genial lot again thumbsup
    god bless dios le los bendiga kindly amazing fantastic super muy amable that is helpful okay
    sweet fine have a day and ty tysm thx yall guys everyone team dear de nada buen dia bendiciones blessings
    blessed bless
    te mija mijo amables amable chevere pana okis oki okey muchisimas bendicion appreciated much kind ta
    apreciate apreciated apreciated appreciated
    """.split()
)
# Politeness around a one-word answer ("1 please", "si, gracias", "dos por favor").
REPLY_FILLERS: frozenset[str] = frozenset(
    """
    please thanks thank you por favor gracias ok just maybe about like i think guess its it is a an
    the option number numero opcion say would id probably around roughly creo que como unos unas
    quizas tal vez yes no si so only solo nomas reply answer choose pick sir maam to be honest hmm
    um uh well sure exactly exactamente mmm el porfa porfavor pls plz mija mijo senora senor hon honey
    """.split()
)

ES_MARKERS: frozenset[str] = frozenset(
    """el la los las de del que por para mi mis tengo tiene es esta estoy estan muy pero gracias favor con sin
    una uno dos tres cuatro cinco ya mas se lo le les su sus hay puedo pueden quiero necesito cuando como donde
    hola buenos buenas dias bien mal aqui eso esto este o en al un todo nada ninguno ninguna alto baja ayuda
    parar cero leve fuerte moderado moderada severo severa claro acuerdo todavia aun pastilla pastillas medicina
    receta dolor duele siento usted ustedes numero equivocado llamen llamenme mande manden envien mensajes textos
    perro gato hoy ayer manana semana noche tarde olvide tome deje diarrea nauseas cansancio cansada cansado
    fiebre escalofrios mareo sarpullido llagas boca pies manos cabeza pecho respirar sangre vomito caro copago
    seguro dinero pagar cuesta si mejor entrega lunes martes miercoles jueves viernes sabado domingo desde
    mucho mucha poco poca cerrando garganta labios lengua desmaye esposo esposa hijo hija recibir
    comenzar iniciar cancelar detener dejen quiten ninguna sangrando para otra otro gustaria quisiera vivir
    morir hormiguean hormigueo dedos moretones piernas brazos salio salieron hinchan hinchados pelando cubre
    perfecto entendido recuerdame recuerdenme cambien mandenlo mandenla conozco persona soy convulsion
    ahorita reacciona despierta jaja jajaja jeje andale orale oiga ocupo nomas luego ahi aca alla senorita senor
    te nos quedan queda solo mija mijo pa pal toy tengo tienen pueden llama llame recibido insoportable anoche
    hace vez veces tomar tomarla tomarlo olvido mande mandenla envienla ahora ningun nadie algo""".split()
)
EN_MARKERS: frozenset[str] = frozenset(
    """the i my you your is are was to it and of have has had not please thanks thank yes can do what when where
    how why this that with for on at be been being get got need want just so but or if we they he she
    feel feeling pain refill pills stop texting message messages number wrong call pharmacist nurse doctor
    dose doses missed forgot skipped week today tomorrow yesterday morning night good bad okay sure nope yep
    all some any really very much too more help info""".split()
)

# Agreement that confirms when a question is open, and only acknowledges otherwise.
AGREE_PATTERN: str = (
    r"\b(?:sounds (?:good|great|fine|perfect)|that works|works for me|that is fine|thats fine|fine by me|im in|i am in"
    r"|de acuerdo|claro que si|por supuesto|esta bien|me parece bien|perfecto|perfect|great|excellent|alright"
    r"|all right|okay|ok|sure thing|that would be great|thatd be great|that would help|please do|correct|thats right"
    r"|that is right|exactly|affirmative|thats it|eso es|asi es|correcto|exacto)\b"
)
# iPhone and Android reactions sent as text: 'Liked “Your refill is ready”'.
TAPBACK_PATTERN: str = (
    r"^\s*(liked|loved|laughed at|emphasi[sz]ed|questioned|disliked|reacted \S+ to|le gusto|le encanto|me gusta"
    r"|me encanta|le dio risa|enfatizo|cuestiono|no le gusto)\s+[\"“”«']"
)
# Not knowing yet ("not sure yet", "no sé", "maybe") is neither yes nor no.
UNSURE_PATTERN: str = (
    r"\b(?:not sure|unsure|dont know|do not know|i dont know|maybe|perhaps|not certain|no se|tal vez|quizas|quiza"
    r"|a lo mejor|let me (?:think|check|see)|depends|idk)\b"
)
