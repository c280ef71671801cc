"""The kind of answer a question asks for ("When..." a date, "How many..." a number, "Who..." a
name), the kind of a span, and the answer-shaped spans of the sentences a model is shown (names,
numbers and dates with their units, noun phrases): whether a span of the asked-for kind is there
at all is a signal of an answerable question."""

from __future__ import annotations

import re
from dataclasses import dataclass

from litegate.tasks.spans import STOPWORDS, coverage, echo, rarity, sentences

# a token: a word with inner punctuation (3.5, 1,000, Metro-Goldwyn-Mayer), a currency or a
# percent sign kept on its number, or one mark of punctuation (a boundary no span crosses)
TOKEN = re.compile(r"[$£€]?\w+(?:[.,'’&-]\w+)*%?|[^\w\s]")
MONTHS = frozenset("""january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec""".split())
NUMBER_WORDS = frozenset("""zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred
thousand million billion trillion dozen half first second third fourth fifth sixth seventh eighth ninth tenth
percent""".split())
# words that join the capitalised words of one name: "Legend of Zelda", "Ministry of the Interior"
NAME_JOINERS = frozenset({"of", "the", "and", "de", "la", "le", "von", "van", "du", "da", "del", "&", "for"})
MAX_WORDS = 6  # a longer span is a clause, not an answer
MAX_CANDIDATES = 120  # from the best sentences first: enough to know which kinds are there

# (pattern at the question's first wh-word, the kind of answer it asks for); the first match wins
WH_WORD = re.compile(r"\b(what|which|who|whom|whose|when|where|how|why|in what|in which)\b")
QUESTION_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"how (many|much|long|old|far|large|big|tall|high|often|fast)\b|what (percentage|percent|number|"
                r"amount|proportion|fraction)\b"), "number"),
    (re.compile(r"when\b|(in )?(what|which) (year|years|date|month|day|decade|century|time)\b"), "date"),
    (re.compile(r"(who|whom|whose)\b|(what|which)( \w+)? (person|man|woman|company|studio|group|band|actor|"
                r"actress|director|organi[sz]ation|team|city|country|state|town|location|county|region|"
                r"name)\b"), "name"),
    (re.compile(r"where\b"), "name"),
)
TIME_UNITS = frozenset("""second seconds minute minutes hour hours day days week weeks month months year years
decade decades""".split())


@dataclass(frozen=True)
class Candidate:
    text: str  # exactly as the passage prints it
    passage: int  # the first passage (in rank order) that holds it
    sentence: str  # the shown sentence it was taken from
    kind: str  # "date", "number", "name" or "phrase"


def expected_kind(question: str) -> str | None:
    """The kind of answer a question asks for ("When..." a date, "How many..." a number, "Who..."
    or "Where..." a name), or None when its words do not say."""
    q = question.lower()
    first = WH_WORD.search(q)  # "What sound ... when ..." asks a "what", not a "when"
    if first is None:
        return None
    for pattern, kind in QUESTION_KINDS:
        if pattern.match(q, first.start()):
            return kind
    return None


def _is_date_word(word: str) -> bool:
    w = word.lower().rstrip(".")
    return (w in MONTHS or bool(re.fullmatch(r"1[0-9]{3}s?|20[0-9]{2}s?|[0-9]{2}s", w))
            or w in {"century", "centuries", "bc", "ad", "bce"})


def span_kind(text: str) -> str:
    """"name" (capitalised words, a year or a number allowed among them: "E3 2005"), "date",
    "number" (a time unit counts: "a month") or "phrase"."""
    words = [w for w in TOKEN.findall(text) if w[0].isalnum() or w[0] in "$£€"]
    content = [w for w in words if w.lower() not in STOPWORDS and w.lower() not in NAME_JOINERS]
    lettered = [w for w in content if w[0].isalpha()]
    if lettered and all(w[0].isupper() for w in lettered) and not all(_is_date_word(w) for w in lettered):
        return "name"
    if any(_is_date_word(w) for w in words):
        return "date"
    if any(any(c.isdigit() for c in w) or w.lower() in NUMBER_WORDS | TIME_UNITS for w in words):
        return "number"
    return "phrase"


def matches(kind: str | None, candidate_kind: str) -> bool | None:
    """Whether a span is of the kind the question asks for (None: the question does not say).
    A date is also a number ("How long..." may be "two years"), not the other way round."""
    if kind is None:
        return None
    if kind == "number":
        return candidate_kind in ("number", "date")
    return candidate_kind == kind


def _spans(sentence: str) -> list[str]:
    """Answer-shaped spans of one sentence: runs of capitalised words (with their joiners), numbers
    and dates with the word after them (a unit: "30 days"), and the runs of content words between
    stop words and punctuation with their leading and trailing parts."""
    tokens = [(m.start(), m.end(), m.group()) for m in TOKEN.finditer(sentence)]
    out: list[tuple[int, int]] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            lo, hi = run[0], run[-1]
            for i in range(lo, hi + 1):  # every leading and trailing part, up to MAX_WORDS words
                for j in range(i, min(hi, i + MAX_WORDS - 1) + 1):
                    if i == lo or j == hi:
                        out.append((tokens[i][0], tokens[j][1]))
            run.clear()

    for i, (_, _, tok) in enumerate(tokens):
        if tok[0].isalnum() or tok[0] in "$£€":
            if tok.lower() not in STOPWORDS or tok.lower() in NUMBER_WORDS:
                run.append(i)
                continue
        flush()
    flush()
    out += _names(tokens) + _numbers(tokens)
    return [sentence[a:b] for a, b in dict.fromkeys(out)]


def _names(tokens: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    out, i = [], 0
    while i < len(tokens):
        if not tokens[i][2][0].isupper() or tokens[i][2].lower() in STOPWORDS:
            i += 1
            continue
        j = i
        while j + 1 < len(tokens):
            nxt = tokens[j + 1][2]
            if nxt[0].isupper() and nxt.lower() not in STOPWORDS:
                j += 1
            elif (nxt.lower() in NAME_JOINERS and j + 2 < len(tokens) and tokens[j + 2][2][0].isupper()
                  and tokens[j + 2][2].lower() not in STOPWORDS):
                j += 2
            else:
                break
        out.append((tokens[i][0], tokens[j][1]))
        i = j + 1
    return out


def _numbers(tokens: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """Numbers and dates, ranges ("3 to 5") kept whole, each alone and with the one or two words
    after it (a unit: "30 days", "3 to 5 business days")."""
    def numeric(k: int) -> bool:
        tok = tokens[k][2]
        return any(c.isdigit() for c in tok) or tok.lower() in NUMBER_WORDS or _is_date_word(tok)

    def joins(k: int) -> bool:  # "," or "to" / "and" / "or" / "-" between two numbers
        return (tokens[k][2].lower() in {",", "to", "and", "or", "-", "–"} and k + 1 < len(tokens)
                and numeric(k + 1))

    out, i = [], 0
    while i < len(tokens):
        if not numeric(i):
            i += 1
            continue
        j = i
        while j + 1 < len(tokens) and (numeric(j + 1) or joins(j + 1)):
            j += 1
        out.append((tokens[i][0], tokens[j][1]))
        for unit in (j + 1, j + 2):
            if unit >= len(tokens) or not tokens[unit][2][0].isalpha() or tokens[unit][2].lower() in STOPWORDS:
                break
            out.append((tokens[i][0], tokens[unit][1]))
        i = j + 1
    return out


def _kind_in(span: str, sentence: str, passages: list[str]) -> str:
    """A span's kind, where a lone capitalised word opening its sentence ("Items can be...") is a
    name only if the passages also capitalise it elsewhere."""
    kind = span_kind(span)
    if kind == "name" and " " not in span and sentence.startswith(span):
        elsewhere = re.compile(r"[^.!?\s]\s+" + re.escape(span) + r"\b")
        if not any(elsewhere.search(p) for p in passages):
            return "phrase"
    return kind


def shown_sentences(shown: str) -> list[str]:
    """The sentences of what the model was shown of one passage (focus joins them with " … ")."""
    return [s for part in shown.split(" … ") for s in sentences(part)]


def candidates(question: str, shown: list[str], passages: list[str]) -> list[Candidate]:
    """Every answer-shaped span of the shown sentences that its passage holds word for word and
    that is not just the question's own words, once each, at most MAX_CANDIDATES: from the
    sentences holding most of the question's rarer words first (earlier passages win ties)."""
    shown_by = [(pi, s) for pi, text in enumerate(shown) for s in shown_sentences(text)]
    weights = rarity([s for _, s in shown_by])
    order = sorted(range(len(shown_by)), key=lambda k: -coverage(question, shown_by[k][1], weights))
    out: dict[str, Candidate] = {}
    for pi, sentence in (shown_by[k] for k in order):
        for span in _spans(sentence):
            span = span.strip(" ,;:")
            if (not span or span in out or len(span) > 80 or span not in passages[pi]
                    or echo(question, span) >= 1.0 or span.lower() in STOPWORDS - NUMBER_WORDS):
                continue
            out[span] = Candidate(span, pi, sentence, _kind_in(span, sentence, passages))
            if len(out) >= MAX_CANDIDATES:
                return list(out.values())
    return list(out.values())

