"""What lets the built-in engine understand a question asked in other words than the knowledge.

A small hand-written English lexicon, for the words guests use about shops, services, courses and
workplaces: groups of words that mean nearly the same for a question ("phone" and "call"), phrases
read as one word ("day off" is "leave"), and question types ("how much", "when", "who") that expand
to the words an answer uses and recognise the sentence that answers (a price, a time, a name).
It is data, not a model: nothing to download, nothing to load, microseconds to apply. Words are
stemmed like the knowledge, so "deliveries" finds "delivery".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portico.kit.i18n import N_

# Each line is one group; a question word of a group also looks for the others (at a lower weight).
SYNONYMS = """
phone telephone call ring dial mobile hotline extension
email e-mail mail write message contact reach
price cost fee charge pay expensive cheap afford
open opening hours closed close
address located location situated directions street find way
shop store boutique showroom
deliver delivery shipping ship shipment postage post send dispatch courier
parcel package order shipment
book booking reserve reservation
arrive arrival take long
return send back exchange
refund money reimburse reimbursement repay
cancel cancellation change modify amend mistake fix correct wrong
abroad international overseas worldwide outside country countries usa america uk
track tracking status where
voucher coupon gift card
card visa mastercard amex debit credit
cash coins notes
paypal klarna invoice transfer
expire expiry valid validity
keep store storage fresh shelf life
fridge refrigerator freezer
caffeine decaf decaffeinated caffeinated
allergy allergies allergic allergen intolerance nut nuts gluten lactose
ingredient ingredients contain contains
bulk wholesale trade large quantity quantities business cafe cafes restaurant restaurants hotel hotels
park parking car garage
tram bus train metro subway transport station
account sign login log password
event events tasting tastings workshop
teacher teaches taught professor instructor tutor
assistant assistants ta tas
lecture lectures class classes lesson lessons seminar meet meeting
lab labs practical practicals tutorial
room hall where building
book books textbook reading literature read
computer laptop pc notebook
software install installed program
homework exercise exercises assignment assignments sheet sheets problem
due deadline submit hand submission
late delay overdue extension
grade grades mark marks score scores assessment weight count graded calculate calculated
pass fail failed failing
exam exams test tests examination final
retake resit repeat second chance again
attend attendance compulsory mandatory obligatory present miss skip come
cheat cheating plagiarism copy integrity
ai chatgpt gpt
credit credits ects points
topic topics syllabus schedule week weeks
chart charts plot plots graph graphs visualise visualize visualisation visualization
prerequisite prerequisites requirement requirements experience beginner
programming code coding program
group groups pair pairs team teams partner
help stuck support forum question
disability disabled dyslexia accessibility adjustment accommodations
vacation holiday holidays leave annual pto
unused leftover remaining carry carried
advance ahead beforehand notice
request ask apply application approve
family relative relatives grandmother grandfather mother father sister brother spouse partner
sick ill illness unwell doctor certificate note
baby child children birth born parental maternity paternity parent
died death passed funeral bereavement
wedding marry married marriage
move moving house
remote remotely home homeoffice
internet broadband allowance
overtime extra hours
quit resign resignation notice terminate termination leave
trial probation probationary
salary pay paid payday wage wages payslip payroll raise increase
travel trip trips business journey
fly flight flights plane
expense expenses receipt receipts reimburse claim
meal meals food lunch dinner allowance
training course courses conference conferences learning development budget
christmas eve december
winter november december january february march
summer june july august
equipment laptop device monitor headset
stolen lost theft steal
harass harassment bully bullying discrimination fraud report complain complaint anonymous whistleblowing
hr personnel human resources
boss manager supervisor
job work working
"""

# Words that phrase a question rather than name what it is about ("Can I *visit* the shop on
# Saturday?"): when the knowledge never uses one, it does not count against a passage's coverage.
# A word the knowledge never uses otherwise names something it does not cover ("paypal", "gym").
PHRASING = """
visit visiting made make makes making already avoid safe run runs running start starts started starting
buy bought stay stays stayed spend spent ask asked asking held hold use used using take took taken
bring brought go goes going went come comes came got put see look looking like really actually exactly
usually normally maybe probably yet even ever never always sometimes later quickly fast
anyone someone somebody anybody everyone people person lot lots bit little enough else whole
because since though although above below amount way kind sort idea mean means meant
create creates created cover covers covered include includes offer offers provide provides allow allows
let lets show shows say says said try tries check choose pick decide plan prefer become becomes
"""

# Phrases read as one word before the question is split into words.
PHRASES = {
    # A question's type is read from the question as it was asked; here its words go.
    "what day": "when",
    "what time": "when",
    "phone number": "phone",
    "telephone number": "phone",
    "e-mail address": "email",
    "email address": "email",
    "day off": "leave",
    "days off": "leave",
    "time off": "leave",
    "paid time off": "leave",
    "work from home": "remote",
    "working from home": "remote",
    "home office": "remote",
    "send back": "return",
    "give back": "return",
    "money back": "refund",
    "credit card": "visa",
    "debit card": "card",
    "gift card": "voucher",
    "cheat sheet": "notes",
    "more time": "extension",
    "where is my": "track",
    "extra hours": "overtime",
    "pay rise": "raise",
    "human resources": "hr",
    "get here": "arrive",
    "gets here": "arrive",
    "broke down": "breakdown",
    "broken down": "breakdown",
    "breaks down": "breakdown",
}


@dataclass(frozen=True)
class QuestionType:
    """A way of asking ("how much ...") and what its answer looks like."""

    asks: re.Pattern[str]
    words: tuple[str, ...]
    answer: re.Pattern[str]
    # Whether a passage without that shape cannot answer (no price, no answer to "how much").
    strict: bool = False


_DAYS = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekday|weekend"
_MONTHS = r"january|february|march|april|may|june|july|august|september|october|november|december"
_NUMBER = r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|half)\b"

QUESTION_TYPES = (
    QuestionType(
        # "How much notice" asks for a time, "how much is it" for a price.
        re.compile(
            r"\bhow much (?:is|are|does|do|will|would|for|to)\b|\bhow much\W*$|\bcosts?\b|\bprices?\b|\bfees?\b"
        ),
        ("price", "cost", "fee", "eur", "free"),
        re.compile(r"\d[\d.,]*\s?(?:eur|euro|usd|gbp|chf|%)|[€$£]\s?\d|\bfree\b", re.I),
        strict=True,
    ),
    QuestionType(
        re.compile(r"\bphone\b|\bcall\b|\btelephone\b|\bring\b"),
        ("call", "phone", "extension"),
        re.compile(r"\+?\d[\d ()/-]{6,}\d|\bextension \d+", re.I),
        strict=True,
    ),
    QuestionType(
        re.compile(r"\be-?mail\b|\bcontact\b|\breach\b"),
        ("email", "write", "call"),
        re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d ()/-]{6,}\d", re.I),
    ),
    QuestionType(
        re.compile(rf"\bwhen\b|\bwhat time\b|\bwhat day\b|\bopen\b|\bclosed?\b|\b(?:{_DAYS})s?\b|\bdeadline\b"),
        ("hours", "open", "day", "date"),
        re.compile(
            rf"\b\d{{1,2}}[:.]\d{{2}}\b|\b(?:{_DAYS})s?\b|\b(?:{_MONTHS})\b|\bweeks? \d"
            r"|\b(?:each|every|last|first|next) (?:working )?(?:day|week|month|year)s?\b",
            re.I,
        ),
    ),
    QuestionType(
        re.compile(r"\bwhere\b"),
        ("address", "room", "building", "floor", "located"),
        re.compile(r"\b(?:room|building|floor|street|strasse|road|hall|office)\b|\b\d{4,5} [A-Z]", re.I),
    ),
    QuestionType(
        re.compile(r"\bwho\b"),
        ("name", "taught", "run"),
        re.compile(r"\b(?:Dr|Prof|Mr|Mrs|Ms)\.? [A-Z]|\b[A-Z][a-z]+ [A-Z][a-z]+\b"),
    ),
    QuestionType(
        re.compile(r"\bhow (?:long|soon)\b|\bhow much time\b|\buntil when\b"),
        ("days", "weeks", "months", "years", "hours", "minutes"),
        re.compile(rf"(?:{_NUMBER})[\w ]{{0,12}}\b(?:minute|hour|day|week|month|year)s?\b", re.I),
    ),
    QuestionType(re.compile(r"\bhow (?:many|often|far)\b"), (), re.compile(_NUMBER, re.I)),
)


_HOW_IT_WORKS = re.compile(
    r"(\bhow (?:do|does|did|will|would|can)\b.*?)\bwork(?:s|ing)?\b(?!\s+(?:from|remotely|at|for|in|on)\b)"
)


def rewrite_phrases(question: str) -> str:
    """The question in lower case, with each known phrase replaced by its one word."""
    text = question.lower()
    for phrase, word in PHRASES.items():
        if phrase in text:
            text = re.sub(rf"\b{re.escape(phrase)}\b", word, text)
    # "How do private links work?" asks about private links, not about working.
    return _HOW_IT_WORKS.sub(r"\1", text)


def question_types(question: str) -> list[QuestionType]:
    text = question.lower()
    return [kind for kind in QUESTION_TYPES if kind.asks.search(text)]


# A message that is only a greeting or a thanks (in English, German, French or Spanish) is answered
# with a short friendly sentence, never the no-answer: it asks nothing of the knowledge.
GREETING = N_("Hello! What would you like to know?")
THANKS = N_("You're welcome! Is there anything else I can help with?")
_POLITE = r"(?:\s+(?:there|all|again|everyone|so much|very much|a lot|a million|a bunch|you|for your help|for that))*"
_SMALL_TALK = (
    (
        re.compile(
            r"(?:hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening|day)|hallo|guten (?:morgen|tag|abend)"
            r"|servus|moin|bonjour|bonsoir|salut|coucou|hola|buenos d[ií]as|buenas(?: tardes| noches)?)" + _POLITE
        ),
        GREETING,
    ),
    (
        re.compile(
            r"(?:(?:ok(?:ay)?|great|perfect|cool|nice|super)[,!.]?\s+)?"
            r"(?:thanks?|thank you|thx|ty|cheers|many thanks|danke(?: sch[oö]n| sehr)?|vielen dank|merci(?: beaucoup)?"
            r"|gracias|muchas gracias)" + _POLITE
        ),
        THANKS,
    ),
)


def small_talk(message: str) -> str | None:
    """The friendly reply (its English msgid) to a message that is only a greeting or a thanks, or None."""
    text = " ".join(re.sub(r"[^\w\s]", " ", message.lower()).split())
    for pattern, reply in _SMALL_TALK:
        if pattern.fullmatch(text):
            return reply
    return None
