"""Extractive answers: the sentences of retrieved passages worth showing a small model, and the
exact span of a passage an answer came from, so every answer is text its citation holds."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

# words with inner punctuation kept whole: 3.5, 1,000, don't, e-mail
WORD = re.compile(r"\w+(?:[.,'’-]\w+)*")
# a sentence ends at . ! ? before a capital, a digit or a quote; a line break always ends one
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9])|\s*\n\s*")
ARTICLES = frozenset({"a", "an", "the"})
STOPWORDS = frozenset("""a an the and or but if of in on at to for from by with as is are was were be been being
do does did has have had it its this that these those there their they them he she his her him we our you your
i me my what which who whom whose when where why how whom not no nor so than then too very can could will would
shall should may might must about into over under after before during between through up down out off again
also just only any all each both few more most other some such own same s t one many much""".split())
LEADING = frozenset({"of", "and", "or", "but", "that", "which", "who", "is", "was", "are", "were", "to", "for",
                     "by", "as", "with", "it", "they"})  # words an answer does not start with
SUFFIXES = (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("'s", ""), ("’s", ""))


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS]


def _key(word: str) -> str:
    """What two forms of a word share ("laptop" for "laptops", "unseat" for "unseated"); a
    number only itself. Suffixes, not prefixes: "Australia" is not "Austria"."""
    if any(c.isdigit() for c in word) or len(word) < 5:
        return word
    for suffix, stem in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + stem
    return word


def echo(question: str, answer: str) -> float:
    """The share of the answer's content words the question already says: "Midna" is rarely
    the answer to "Who saves Midna?"."""
    said = [_key(w) for w in content_words(answer)]
    if not said:
        return 0.0
    asked = {_key(w) for w in content_words(question)}
    return sum(w in asked for w in said) / len(said)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s and s.strip()]


def _idf(docs: list[set[str]]) -> dict[str, float]:
    df = Counter(k for d in docs for k in d)
    return {k: math.log((len(docs) + 1) / (n + 0.5)) for k, n in df.items()}


def rarity(texts: list[str]) -> dict[str, float]:
    """How rare each word form is among ``texts`` (the weights ``coverage`` takes)."""
    return _idf([{_key(w) for w in words(t)} for t in texts])


def coverage(question: str, text: str, idf: dict[str, float] | None = None) -> float:
    """The share of the question's content words (weighted by rarity) that ``text`` holds: a
    question about something the text never names is rarely answered by it."""
    asked = {_key(w) for w in content_words(question)}
    if not asked:
        return 1.0
    present = {_key(w) for w in words(text)}
    weight = idf or {}
    total = sum(weight.get(k, 1.0) for k in asked)
    return sum(weight.get(k, 1.0) for k in asked if k in present) / total


def focus(question: str, passages: list[str], budget: int) -> list[str]:
    """What to show the model of each passage within ``budget`` characters: whole passages when
    they fit, else the sentences sharing most (rare) words with the question, in their own
    order, best first across passages (earlier passages win ties)."""
    if sum(len(p) for p in passages) <= budget:
        return list(passages)
    split = [sentences(p) for p in passages]
    flat = [(pi, si, s) for pi, ss in enumerate(split) for si, s in enumerate(ss)]
    idf = _idf([{_key(w) for w in words(s)} for _, _, s in flat])
    ranked = sorted(flat, key=lambda x: (-coverage(question, x[2], idf), x[0], x[1]))
    chosen: set[tuple[int, int]] = set()
    used = 0
    for pi, si, s in ranked:
        if chosen and used + len(s) > budget:
            continue
        chosen.add((pi, si))
        used += len(s) + 1
    return [" … ".join(s for si, s in enumerate(ss) if (pi, si) in chosen) for pi, ss in enumerate(split)]


@dataclass
class Span:
    passage: int  # index into the passages searched
    start: int  # character offsets in that passage
    end: int
    f1: float  # word overlap of the span with the answer it stands for (1.0: the same words)

    def text(self, passages: list[str]) -> str:
        return passages[self.passage][self.start:self.end]


def _norm(word: str) -> str:
    """A word as answers compare it: lower case; a number without its separators ("1,32" as
    "1.32": small models mix them up); another form of a long word alike."""
    if any(c.isdigit() for c in word):
        return word.replace(",", "").replace(".", "")
    return _key(word.lower())


def snap(answer: str, passages: list[str], max_extra: int = 4) -> Span | None:
    """The span of a passage (whole words) with the highest word-overlap F1 with ``answer``
    (on a tie the longer one), holding every number of the answer ("5.32 million" has none:
    "million" alone is no answer): a paraphrased or padded answer becomes text its passage
    holds, an invented figure becomes nothing."""
    wanted = Counter(_norm(w) for w in WORD.findall(answer) if w.lower() not in ARTICLES)
    if not wanted:
        return None
    size = sum(wanted.values())
    numbers = {w for w in wanted if w.isdigit()}
    best: Span | None = None
    for pi, text in enumerate(passages):
        tokens = [(m.start(), m.end(), _norm(m.group())) for m in WORD.finditer(text)]
        for i, (start, _, w) in enumerate(tokens):
            if w not in wanted:
                continue
            seen: Counter[str] = Counter()
            common = 0
            for j in range(i, min(len(tokens), i + size + max_extra)):
                word = tokens[j][2]
                if word in ARTICLES:
                    continue
                seen[word] += 1
                if seen[word] <= wanted[word]:
                    common += 1
                length = sum(seen.values())
                if numbers - seen.keys():
                    continue
                f1 = 2 * common / (length + size)
                if best is None or f1 > best.f1 + 1e-9 or (abs(f1 - best.f1) <= 1e-9 and
                                                           tokens[j][1] - start > best.end - best.start):
                    best = Span(pi, start, tokens[j][1], f1)
    return best


def trim(span_text: str, question: str) -> str:
    """Drop the words the question already says from the start of a longer answer ("It
    unseated Avatar" for "Which film did Spectre unseat?" is "Avatar"); a unit after a number
    ("30 days" for "how many days") stays."""
    asked = {_key(w) for w in content_words(question)}
    found = list(WORD.finditer(span_text))
    lo = 0
    for i, m in enumerate(found[:-1]):
        word = m.group().lower()
        if _key(word) in asked and word not in STOPWORDS:
            lo = i + 1
        elif word not in STOPWORDS:
            break
    if len(found) < 3 or not lo:
        lo = 0
    while lo < len(found) - 1 and found[lo].group().lower() in LEADING:
        lo += 1
    if not lo:
        return span_text.strip()
    return span_text[found[lo].start():].strip()
