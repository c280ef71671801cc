"""Pilot of a nano extractive reader: the fast encoder (all-MiniLM-L6-v2) fine-tuned with a
start/end head on SQuAD-2-style (question, paragraph) pairs, [CLS] standing for "no answer".

Torch trains (one thread, a bounded time); the tuned layers and head are then also run on the
encoder's own NumPy path (float32 and 8-bit weights) to show serving needs no torch. Data:
SQuAD-format *train* files given by path (never a dev set, which is reserved): a SQuAD 2.0 one
first (it holds the calibration and evaluation articles and their written unanswerables), then
more (SQuAD 1.1's train set, made by bench/squad_pages.py); nothing is downloaded. Articles are
split: training articles, one calibration article (picks the abstention threshold, never
trained on) and one evaluation article (never tuned on), left out of training in every file.
No-answer rows for training are made: the question with another paragraph (easy), with its own
paragraph less the answer's sentence, or with one of its anchors swapped for one the paragraph
lacks (hard).

    nice -n 5 python bench/reader_pilot.py --source /path/to/train-v2.0.json --minutes 15
    nice -n 10 python bench/reader_pilot.py --source /path/to/train-v2.0.json /path/to/train-v1.1.json \
        --negatives 0.05 --removed-negatives 0.15 --swapped-negatives 0.15 --minutes 42 --examples 11000
    nice -n 10 python bench/reader_pilot.py --source ... --tuned-layers 2 --lr 2e-4 --examples 20000 \
        --peer /tmp/reader.npz

With --tuned-layers below the encoder's 6, the frozen layers' outputs are computed once per
training row on the encoder's 8-bit serving graph and kept (float16), and only the top layers
train on them; --peer scores another saved reader (or a shipped one) on the same questions in
the same run.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from litegate.evals.answers import normalize, token_f1
from litegate.nano.encoder import MiniLMEncoder
from litegate.nano.onnx_layers import OnnxLayers
from litegate.nano.reader import ReaderWeights
from litegate.nano.tuned import MATRICES, NAMES, to_8bit

MAX_QUESTION = 48  # word pieces of the question kept
MAX_ANSWER = 30  # word pieces a span may hold


def load_articles(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())["data"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{path} is not a readable SQuAD-format file (data[].paragraphs[].qas[]): {e}")
    if not data or "paragraphs" not in data[0]:
        sys.exit(f"{path} is not a SQuAD-format file (data[].paragraphs[].qas[])")
    return data


def load_sources(paths: list[Path]) -> list[list[dict[str, Any]]]:
    """Each file's articles, an article already read from an earlier file left out (SQuAD 2.0's
    train file holds SQuAD 1.1's train articles with unanswerables added: give it first)."""
    seen: set[str] = set()
    out = []
    for path in paths:
        articles = [a for a in load_articles(path) if a["title"] not in seen]
        seen.update(a["title"] for a in articles)
        out.append(articles)
    return out


def items_of(article: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in article["paragraphs"]:
        for qa in p["qas"]:
            answers = [] if qa.get("is_impossible") else [(a["text"], a["answer_start"]) for a in qa["answers"]]
            out.append({"question": qa["question"], "context": p["context"], "answers": answers})
    return out


def holds_answer(item: dict[str, Any], text: str) -> bool:
    """Whether ``text`` holds any of the item's answers (case aside)."""
    lower = text.lower()
    return any(a.lower() in lower for a, _ in item["answers"])


def synthetic_negatives(article: dict[str, Any], rng: np.random.Generator, share: float) -> list[dict[str, Any]]:
    """Answerable questions paired with another paragraph of their article that holds none of
    their answers: a cheap stand-in for SQuAD 2.0's written unanswerables."""
    paragraphs = [p["context"] for p in article["paragraphs"]]
    out = []
    for item in items_of(article):
        if not item["answers"] or rng.random() > share or len(paragraphs) < 2:
            continue
        other = paragraphs[int(rng.integers(len(paragraphs)))]
        if other != item["context"] and not holds_answer(item, other):
            out.append({"question": item["question"], "context": other, "answers": []})
    return out


def retrieved_negatives(article: dict[str, Any], rng: np.random.Generator, share: float) -> list[dict[str, Any]]:
    """Answerable questions paired with the other paragraph of their article that retrieval would
    bring them (the most of the question's words, each weighted by its rarity in the article)
    when it holds none of their answers: the chunks the reader must score low behind retrieval."""
    paragraphs = [p["context"] for p in article["paragraphs"]]
    if len(paragraphs) < 2 or share <= 0:
        return []
    words = [set(re.findall(r"[a-z0-9]{3,}", p.lower())) for p in paragraphs]
    df = collections.Counter(w for ws in words for w in ws)
    idf = {w: float(np.log((len(paragraphs) + 1) / (c + 0.5))) for w, c in df.items()}
    out = []
    for item in items_of(article):
        if not item["answers"] or rng.random() > share:
            continue
        asked = set(re.findall(r"[a-z0-9]{3,}", item["question"].lower()))
        nearest = max(((sum(idf.get(w, 0.0) for w in asked & ws), i) for i, ws in enumerate(words)
                       if paragraphs[i] != item["context"]), default=None)
        if nearest is not None and not holds_answer(item, paragraphs[nearest[1]]):
            out.append({"question": item["question"], "context": paragraphs[nearest[1]], "answers": []})
    return out


SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w'-]*)*")
NUMBER = re.compile(r"\b\d[\d,.]*\b")
WORD = re.compile(r"\b[a-z]{5,}\b")


def answer_sentence_removed(item: dict[str, Any]) -> dict[str, Any] | None:
    """The question with its own paragraph less the sentence(s) its first answer sits in; None
    when the paragraph still holds one of its answers (or nothing is left)."""
    text, char = item["answers"][0]
    context = item["context"]
    bounds = [0] + [m.end() for m in SENTENCE_END.finditer(context)] + [len(context)]
    kept = [context[a:b] for a, b in zip(bounds, bounds[1:]) if not (a < char + len(text) and char < b)]
    rest = "".join(kept).strip()
    if len(rest) < 80 or holds_answer(item, rest):
        return None
    return {"question": item["question"], "context": rest, "answers": []}


class Swaps:
    """Questions with one of their anchors (a name, a number, a longer word that the paragraph
    also holds) replaced by one of the same kind that the paragraph does not hold: the question
    reads as before but asks about something the paragraph never mentions."""

    def __init__(self, contexts: list[str], rng: np.random.Generator):
        self.rng = rng
        names: dict[int, set[str]] = collections.defaultdict(set)
        words: set[str] = set()
        for c in contexts:
            for m in NAME.finditer(c):
                names[len(m.group().split())].add(m.group())
            words.update(WORD.findall(c))
        self.names = {k: sorted(v) for k, v in names.items()}
        self.words = sorted(words)

    def _number(self, value: str) -> str:
        digits = value.replace(",", "")
        if re.fullmatch(r"1[5-9]\d\d|20\d\d", digits):  # a year: another year nearby
            return str(int(digits) + int(self.rng.choice([-1, 1])) * int(self.rng.integers(2, 40)))
        if digits.isdigit():
            return str(max(1, int(digits) * int(self.rng.integers(2, 9)) + int(self.rng.integers(1, 9))))
        return str(int(self.rng.integers(2, 999)))

    def __call__(self, item: dict[str, Any]) -> dict[str, Any] | None:
        question, low = item["question"], item["context"].lower()
        spots = [(m, "number") for m in NUMBER.finditer(question) if m.group() in item["context"]]
        spots += [(m, "name") for m in NAME.finditer(question) if m.start() > 0 and m.group().lower() in low]
        if not spots:
            spots = [(m, "word") for m in WORD.finditer(question) if m.group() in low]
        if not spots:
            return None
        m, kind = spots[int(self.rng.integers(len(spots)))]
        for _ in range(8):
            if kind == "number":
                new = self._number(m.group())
            elif kind == "name":
                pool = self.names.get(len(m.group().split())) or self.names[1]
                new = pool[int(self.rng.integers(len(pool)))]
            else:
                new = self.words[int(self.rng.integers(len(self.words)))]
            if new.lower() not in low and new.lower() != m.group().lower():
                swapped = question[:m.start()] + new + question[m.end():]
                return {"question": swapped, "context": item["context"], "answers": []}
        return None


# a passive or progressive verb after its auxiliary: "were killed", "was born", "is being"
PARTICIPLE = re.compile(r"\b(is|are|was|were|been|be)\s+(?!between\b|often\b|even\b|when\b|then\b|seven\b|eleven\b)"
                        r"([a-z]+(?:ed|en|ing|wn|ught))\b")
FUNCTION_WORDS = frozenset("a an the in on at of for by to from with as it this that these those his her its their "
                           "he she they we i you".split())
ANTONYMS = dict(pair for a, b in (
    ("first", "last"), ("largest", "smallest"), ("biggest", "smallest"), ("most", "least"), ("highest", "lowest"),
    ("before", "after"), ("earliest", "latest"), ("early", "late"), ("increase", "decrease"),
    ("increased", "decreased"), ("win", "lose"), ("won", "lost"), ("north", "south"), ("east", "west"),
    ("northern", "southern"), ("eastern", "western"), ("began", "ended"), ("start", "end"), ("started", "ended"),
    ("older", "younger"), ("oldest", "youngest"), ("longest", "shortest"), ("best", "worst"), ("more", "fewer"),
    ("positive", "negative"), ("upper", "lower"), ("inside", "outside"), ("open", "closed"), ("rich", "poor"),
    ("major", "minor"), ("public", "private"), ("internal", "external"), ("import", "export"),
    ("imported", "exported"), ("successful", "unsuccessful"), ("allowed", "forbidden"), ("accepted", "rejected"),
    ("supported", "opposed"), ("maximum", "minimum"), ("male", "female"), ("modern", "ancient"))
    for pair in ((a, b), (b, a)) if pair[0] not in ("last", "end", "lower", "open"))  # these are verbs too


class Rewrites:
    """Questions rewritten the ways SQuAD 2.0's writers made unanswerable ones from a paragraph:
    a name the paragraph holds swapped for another of its names (the relation is not stated
    for that one), a name blended with a word of another ("Twilight Princess" -> "Radar
    Princess"), a word turned into its antonym the paragraph does not use, or a passive or
    progressive verb negated ("How many were killed?" -> "How many were not killed?"). Cheap,
    noisy (a swap can land on a stated relation), and written from the paragraph alone, with no
    data set's own questions."""

    KINDS = ("name_swap", "name_blend", "antonym", "negation")

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def __call__(self, item: dict[str, Any]) -> dict[str, Any] | None:
        question, context = item["question"], item["context"]
        answers = [a.lower() for a, _ in item["answers"]]
        for kind in self.rng.permutation(len(self.KINDS)):
            made = getattr(self, self.KINDS[int(kind)])(question, context, answers)
            if made and made != question:
                return {"question": made, "context": context, "answers": [], "kind": self.KINDS[int(kind)]}
        return None

    def _names(self, question: str, context: str) -> tuple[list[re.Match[str]], list[str]]:
        """The question's names the paragraph holds, and the paragraph's names: a capitalised
        word that also occurs in lower case, or starts a sentence only, is no name."""
        low = set(re.findall(r"\b[a-z][\w'-]*", context))
        starts = {m.group(1) for m in re.finditer(r"(?:^|[.!?]\s+)([A-Z][\w'-]*)", context)}

        def is_name(text: str) -> bool:
            words = text.split()
            if words[0].lower() in FUNCTION_WORDS or len(words[-1]) < 2:
                return False
            return len(words) > 1 or (text.lower() not in low and text not in starts and len(text) > 2)

        asked = [m for m in NAME.finditer(question) if m.start() > 0 and m.group() in context and is_name(m.group())]
        named = sorted({m.group() for m in NAME.finditer(context) if is_name(m.group())})
        return asked, named

    def name_swap(self, question: str, context: str, answers: list[str]) -> str | None:
        asked, named = self._names(question, context)
        if not asked:
            return None
        m = asked[int(self.rng.integers(len(asked)))]
        pool = [n for n in named if n not in question and n.lower() not in answers
                and not any(n.lower() in a or a in n.lower() for a in answers)]
        if not pool:
            return None
        return question[:m.start()] + pool[int(self.rng.integers(len(pool)))] + question[m.end():]

    def name_blend(self, question: str, context: str, answers: list[str]) -> str | None:
        asked, named = self._names(question, context)
        asked = [m for m in asked if len(m.group().split()) > 1]
        words = sorted({w for n in named for w in n.split() if len(w) > 3})
        if not asked or not words:
            return None
        m = asked[int(self.rng.integers(len(asked)))]
        parts = m.group().split()
        at = int(self.rng.integers(len(parts)))
        new = " ".join(parts[:at] + [words[int(self.rng.integers(len(words)))]] + parts[at + 1:])
        if new in context:
            return None
        return question[:m.start()] + new + question[m.end():]

    def antonym(self, question: str, context: str, answers: list[str]) -> str | None:
        low = context.lower()
        spots = [m for m in re.finditer(r"\b[a-z]+\b", question) if m.group() in ANTONYMS
                 and not re.search(rf"\b{ANTONYMS[m.group()]}\b", low)]
        if not spots:
            return None
        m = spots[int(self.rng.integers(len(spots)))]
        return question[:m.start()] + ANTONYMS[m.group()] + question[m.end():]

    def negation(self, question: str, context: str, answers: list[str]) -> str | None:
        m = PARTICIPLE.search(question)
        if m is None or " not " in question or "n't" in question:
            return None
        return question[:m.end(1)] + " not" + question[m.end(1):]


def rewritten(items: list[dict[str, Any]], rng: np.random.Generator, share: float) -> list[dict[str, Any]]:
    """A ``share`` of the answerable questions rewritten to ask what their paragraph does not say
    (``Rewrites``), as no-answer rows."""
    rewrite = Rewrites(rng)
    out = []
    for item in items:
        if item["answers"] and rng.random() < share and (neg := rewrite(item)):
            out.append(neg)
    return out


def hard_negatives(items: list[dict[str, Any]], rng: np.random.Generator, removed: float, swapped: float
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """No-answer rows close to the answerable ones: (answer sentence removed, anchor swapped)."""
    answerable = [it for it in items if it["answers"]]
    swaps = Swaps(sorted({it["context"] for it in answerable}), rng)
    out_removed, out_swapped = [], []
    for item in answerable:
        if rng.random() < removed and (neg := answer_sentence_removed(item)):
            out_removed.append(neg)
        if rng.random() < swapped and (neg := swaps(item)):
            out_swapped.append(neg)
    return out_removed, out_swapped


class Windows:
    """[CLS] question [SEP] paragraph-window [SEP] in word pieces, with each piece's characters."""

    def __init__(self, encoder: MiniLMEncoder, max_tokens: int, stride: int):
        self.tok = encoder._untruncated
        self.cls, self.sep = self.tok.token_to_id("[CLS]"), self.tok.token_to_id("[SEP]")
        self.max_tokens, self.stride = max_tokens, stride

    def __call__(self, question: str, context: str) -> list[dict[str, Any]]:
        q = self.tok.encode(question, add_special_tokens=False).ids[:MAX_QUESTION]
        c = self.tok.encode(context, add_special_tokens=False)
        room = self.max_tokens - len(q) - 3
        out, start = [], 0
        while True:
            ids = c.ids[start:start + room]
            offsets = [None] * (len(q) + 2) + list(c.offsets[start:start + room]) + [None]
            out.append({"ids": [self.cls, *q, self.sep, *ids, self.sep], "offsets": offsets,
                        "first": len(q) + 2})
            if start + room >= len(c.ids):
                return out
            start += self.stride


def attach_distractors(article: dict[str, Any], items: list[dict[str, Any]], k: int) -> None:
    """Each answerable item's ``k`` other paragraphs of its article most like its question
    (TF-IDF cosine) that hold none of its answers: what retrieval puts beside the right one."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    paragraphs = [p["context"] for p in article["paragraphs"]]
    if len(paragraphs) < 2 or not items:
        return
    vectorizer = TfidfVectorizer(stop_words="english").fit(paragraphs)
    likeness = (vectorizer.transform([it["question"] for it in items]) @ vectorizer.transform(paragraphs).T).toarray()
    for item, row in zip(items, likeness):
        if not item["answers"]:
            continue
        picked: list[str] = []
        for j in np.argsort(-row, kind="stable"):
            other = paragraphs[int(j)]
            if other != item["context"] and not holds_answer(item, other):
                picked.append(other)
                if len(picked) == k:
                    break
        item["distractors"] = picked


def training_rows(items: list[dict[str, Any]], windows: Windows
                  ) -> tuple[list[tuple[list[int], int, int]], list[list[int]]]:
    """(ids, start, end) per item: the first window holding its first answer, or the first
    window with (0, 0) for no answer; and the units the loss normalizes over: the item's row
    alone, or (with distractors) its row first and then its distractors' first windows, whose
    spans and no-answer positions compete with its answer in one softmax (shared
    normalization, Clark and Gardner 2018), so scores of separately read passages compare."""
    rows: list[tuple[list[int], int, int]] = []
    units = []
    for item in items:
        wins = windows(item["question"], item["context"])
        if not item["answers"]:
            units.append([len(rows)])
            rows.append((wins[0]["ids"], 0, 0))
            continue
        text, char = item["answers"][0]
        lo, hi = char, char + len(text)
        for w in wins:
            pieces = [i for i, o in enumerate(w["offsets"]) if o is not None and o[1] > lo and o[0] < hi]
            if pieces and w["offsets"][pieces[0]][0] <= lo and w["offsets"][pieces[-1]][1] >= hi:
                unit = [len(rows)]
                rows.append((w["ids"], pieces[0], pieces[-1]))
                for other in item.get("distractors", ()):
                    unit.append(len(rows))
                    rows.append((windows(item["question"], other)[0]["ids"], 0, 0))
                units.append(unit)
                break
    return rows, units


class Reader:
    """The encoder's layers and embeddings as torch tensors plus a start/end head."""

    def __init__(self, torch: Any, encoder: MiniLMEncoder, tuned_layers: int):
        self.torch, self.enc = torch, encoder
        word, pos, tok_type, ln_w, ln_b = encoder._emb
        t = lambda a, grad=False: torch.nn.Parameter(torch.from_numpy(np.array(a, np.float32)), requires_grad=grad)  # noqa: E731
        self.emb = [t(word), t(pos), t(tok_type), t(ln_w), t(ln_b)]
        self.frozen = encoder.layers - tuned_layers
        self.layers = [[t(w, i >= self.frozen) for w in layer] for i, layer in enumerate(encoder._layers)]
        self.head_w = t(np.random.default_rng(0).normal(0, 0.02, (encoder.dim, 2)), True)
        self.head_b = t(np.zeros(2), True)

    def load(self, layers: list[tuple[np.ndarray, ...]], head_w: np.ndarray, head_b: np.ndarray) -> None:
        """Start from a reader made before (its layers and head)."""
        with self.torch.no_grad():
            for mine, theirs in zip(self.layers, layers):
                for p, w in zip(mine, theirs):
                    p.copy_(self.torch.from_numpy(np.array(w, np.float32)))
            self.head_w.copy_(self.torch.from_numpy(np.array(head_w, np.float32)))
            self.head_b.copy_(self.torch.from_numpy(np.array(head_b, np.float32)))

    def parameters(self) -> list[Any]:
        return [p for layer in self.layers[self.frozen:] for p in layer] + [self.head_w, self.head_b]

    def _block(self, x: Any, bias: Any, layer: list[Any]) -> Any:
        f = self.torch.nn.functional
        qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, f_w, f_b, ln2_w, ln2_b = layer
        n, t, dim = x.shape
        heads = self.enc.heads
        q, k, v = (part.reshape(n, t, heads, dim // heads).transpose(1, 2)
                   for part in (x @ qkv_w + qkv_b).split(dim, dim=-1))
        probs = f.softmax(q @ k.transpose(-1, -2) / (dim // heads) ** 0.5 + bias, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(n, t, dim)
        x = f.layer_norm(x + ctx @ o_w + o_b, (dim,), ln1_w, ln1_b, self.enc.eps)
        return f.layer_norm(x + f.gelu(x @ i_w + i_b) @ f_w + f_b, (dim,), ln2_w, ln2_b, self.enc.eps)

    def top(self, x: Any, mask: Any) -> tuple[Any, Any]:
        """Start and end logits from the frozen layers' outputs ``x`` (n, t, dim): the tuned
        layers and the head only (what training on cached states runs)."""
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in self.layers[self.frozen:]:
            x = self._block(x, bias, layer)
        logits = x @ self.head_w + self.head_b
        return logits[..., 0], logits[..., 1]

    def __call__(self, ids: Any, mask: Any) -> tuple[Any, Any]:
        torch, f = self.torch, self.torch.nn.functional
        word, pos, tok_type, ln_w, ln_b = self.emb
        n, t = ids.shape
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        with torch.no_grad():
            x = f.layer_norm(word[ids] + pos[:t][None] + tok_type, (self.enc.dim,), ln_w, ln_b, self.enc.eps)
            for layer in self.layers[:self.frozen]:
                x = self._block(x, bias, layer)
        for layer in self.layers[self.frozen:]:
            x = self._block(x, bias, layer)
        logits = x @ self.head_w + self.head_b
        return logits[..., 0], logits[..., 1]

    def export(self) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray, np.ndarray]:
        layers = [tuple(p.detach().numpy().copy() for p in layer) for layer in self.layers]
        return layers, self.head_w.detach().numpy().copy(), self.head_b.detach().numpy().copy()


def plan_batches(rows: list[tuple[list[int], int, int]], units: list[list[int]], args: argparse.Namespace
                 ) -> list[list[int]]:
    """``args.examples`` unit indices (passes over the units in random order, the first
    ``args.skip`` of them left out) in batches of
    similar lengths (less padding), the batches in random order; a batch holds ``args.batch``
    units, or as many units of ``args.shared`` rows as make about ``args.batch`` rows."""
    rng = np.random.default_rng(args.seed)
    order = list(rng.permutation(len(units)))
    while len(order) < args.skip + args.examples:
        order += list(rng.permutation(len(units)))
    order = order[args.skip:args.skip + args.examples]
    per = max(1, args.batch // max(1, args.shared))
    chunks = [order[i:i + per * 8] for i in range(0, len(order), per * 8)]
    batches = []
    for chunk in chunks:
        chunk = sorted(chunk, key=lambda i: len(rows[units[i][0]][0]))
        batches += [chunk[i:i + per] for i in range(0, len(chunk), per)]
    return [batches[i] for i in rng.permutation(len(batches))]


def frozen_cache(encoder: MiniLMEncoder, frozen: int, rows: list[tuple[list[int], int, int]], needed: set[int]
                 ) -> tuple[dict[int, np.ndarray], dict[str, Any]]:
    """Each needed row's word-piece vectors after the ``frozen`` lower layers, computed once on
    the graph the encoder serves with (onnxruntime, 8-bit weights, one thread), kept in float16:
    the tuned layers train on what they will read when served."""
    graph = OnnxLayers(encoder._layers[:frozen], encoder.dim, encoder.heads, encoder.eps)
    started = time.perf_counter()
    order = sorted(needed, key=lambda i: len(rows[i][0]))
    cache: dict[int, np.ndarray] = {}
    for b in range(0, len(order), 16):
        idx = order[b:b + 16]
        t = max(len(rows[i][0]) for i in idx)
        ids = np.zeros((len(idx), t), np.int64)
        mask = np.zeros((len(idx), t), np.float32)
        for r, i in enumerate(idx):
            ids[r, :len(rows[i][0])], mask[r, :len(rows[i][0])] = rows[i][0], 1.0
        x = graph.run(encoder._embed(ids).reshape(len(idx), t, encoder.dim), encoder._attention_bias(mask))
        for r, i in enumerate(idx):
            cache[i] = x[r, :len(rows[i][0])].astype(np.float16)
        if b % 3200 == 0:
            print(f"cache {b}/{len(order)} rows", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    size = sum(a.nbytes for a in cache.values())
    return cache, {"rows": len(cache), "layers": frozen, "seconds": round(seconds, 1),
                   "rows_per_s": round(len(cache) / seconds, 1), "megabytes_float16": round(size / 1e6)}


def unit_loss(torch: Any, start_logits: Any, end_logits: Any, pad: Any, sizes: list[int],
              targets: list[tuple[int, int]]) -> Any:
    """Cross-entropy of each unit's answer over all its rows' positions at once (a unit of one
    row: over that row's), averaged over the units. The answer's row comes first in its unit."""
    f = torch.nn.functional
    s, e = start_logits + pad, end_logits + pad
    if all(k == 1 for k in sizes):
        y_start, y_end = torch.tensor([t[0] for t in targets]), torch.tensor([t[1] for t in targets])
        return (f.cross_entropy(s, y_start) + f.cross_entropy(e, y_end)) / 2
    losses, at = [], 0
    for k, (a, b) in zip(sizes, targets):
        losses.append((f.cross_entropy(s[at:at + k].reshape(1, -1), torch.tensor([a]))
                       + f.cross_entropy(e[at:at + k].reshape(1, -1), torch.tensor([b]))) / 2)
        at += k
    return torch.stack(losses).mean()


def train(torch: Any, reader: Reader, rows: list[tuple[list[int], int, int]], units: list[list[int]],
          args: argparse.Namespace, encoder: MiniLMEncoder) -> dict[str, Any]:
    optimizer = torch.optim.AdamW(reader.parameters(), lr=args.lr, weight_decay=0.01)
    unit_batches = plan_batches(rows, units, args)
    planned = max(1, len(unit_batches))
    warmup = max(1, planned // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.05, (planned - s) / max(1, planned - warmup))))
    batches = [[i for u in b for i in units[u]] for b in unit_batches]
    cached = reader.frozen > 0 and not args.no_cache
    report: dict[str, Any] = {}
    if cached:
        cache, report["frozen_cache"] = frozen_cache(encoder, reader.frozen, rows, {i for b in batches for i in b})
    started, seen, questions, losses = time.perf_counter(), 0, 0, []
    for step, (batch, unit_batch) in enumerate(zip(batches, unit_batches)):
        if time.perf_counter() - started > args.minutes * 60:
            break
        t = max(len(rows[i][0]) for i in batch)
        mask = np.zeros((len(batch), t), np.float32)
        for r, i in enumerate(batch):
            mask[r, :len(rows[i][0])] = 1.0
        if cached:
            x = np.zeros((len(batch), t, encoder.dim), np.float32)
            for r, i in enumerate(batch):
                x[r, :len(rows[i][0])] = cache[i]
            start_logits, end_logits = reader.top(torch.from_numpy(x), torch.from_numpy(mask))
        else:
            ids = np.zeros((len(batch), t), np.int64)
            for r, i in enumerate(batch):
                ids[r, :len(rows[i][0])] = rows[i][0]
            start_logits, end_logits = reader(torch.from_numpy(ids), torch.from_numpy(mask))
        pad = torch.from_numpy((1.0 - mask) * -1e4)
        loss = unit_loss(torch, start_logits, end_logits, pad, [len(units[u]) for u in unit_batch],
                         [rows[units[u][0]][1:] for u in unit_batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        seen += len(batch)
        questions += len(unit_batch)
        losses.append(float(loss.detach()))
        if step % 20 == 0:
            print(f"step {step}/{len(batches)} examples {seen} loss {np.mean(losses[-20:]):.3f} "
                  f"{seen / (time.perf_counter() - started):.2f} ex/s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    return {**report, "examples_seen": seen, "units_seen": questions, "steps": len(losses),
            "seconds": round(seconds, 1),
            "examples_per_s": round(seen / seconds, 2), "loss_first_20": round(float(np.mean(losses[:20])), 3),
            "loss_last_20": round(float(np.mean(losses[-20:])), 3)}


def numpy_logits(encoder: MiniLMEncoder, weights: tuple[list[Any], np.ndarray, np.ndarray], ids: list[int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The same forward pass on the encoder's own NumPy path: no torch."""
    layers, head_w, head_b = weights
    a = np.array([ids], np.int64)
    mask = np.ones(a.shape, np.float32)
    x = encoder._numpy_tapped(encoder._embed(a), encoder._attention_bias(mask), layers, 1, a.shape[1])[0]
    logits = x @ head_w + head_b
    return logits[:, 0], logits[:, 1]


def onnx_logits(encoder: MiniLMEncoder, graph: OnnxLayers, head: tuple[np.ndarray, np.ndarray], ids: list[int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """The forward pass on the graph the nano encoders serve with (onnxruntime, 8-bit weights)."""
    a = np.array([ids], np.int64)
    mask = np.ones(a.shape, np.float32)
    x = graph.run(encoder._embed(a).reshape(1, a.shape[1], encoder.dim), encoder._attention_bias(mask))[0]
    logits = x @ head[0] + head[1]
    return logits[:, 0], logits[:, 1]


def load_weights(path: Path, layers: int) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray, np.ndarray]:
    """The layers and head written by ``--save`` (keys l{layer}_{matrix}, head_w, head_b), or
    of a reader as the package ships it (bench/reader_ship.py), its layers made whole again."""
    try:
        with np.load(path) as z:
            if "meta" not in z:
                tuned = [tuple(z[f"l{i}_{j}"] for j in range(len(NAMES))) for i in range(layers)]
                return tuned, z["head_w"], z["head_b"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"{path} is not a reader saved by bench/reader_pilot.py --save ({layers} layers and a head): {e}")
    encoder = MiniLMEncoder(runtime="numpy")
    shipped = ReaderWeights.load(path, encoder._layers)
    frozen = encoder.layers - len(shipped.tuned.layers)
    return encoder._layers[:frozen] + shipped.tuned.layers, shipped.head_w, shipped.head_b


def onnx_reader(path: Path, max_tokens: int = 256, stride: int = 128) -> tuple[Windows, Any]:
    """A saved reader served as the nano encoders serve (onnxruntime, 8-bit weights, one thread):
    its windows and its logits function, for ``read``."""
    encoder = MiniLMEncoder(runtime="numpy")
    layers, head_w, head_b = load_weights(path, encoder.layers)
    graph = OnnxLayers(layers, encoder.dim, encoder.heads, encoder.eps)
    return Windows(encoder, max_tokens, stride), lambda ids: onnx_logits(encoder, graph, (head_w, head_b), ids)


def best_span(start: np.ndarray, end: np.ndarray, first: int, last: int) -> tuple[float, int, int]:
    """The best (score, i, j) with first <= i <= j < last and j - i < MAX_ANSWER."""
    s, e = start[first:last], end[first:last]
    top_s = np.argsort(-s)[:20]
    top_e = np.argsort(-e)[:20]
    best = (-1e9, first, first)
    for i in top_s:
        for j in top_e:
            if i <= j < i + MAX_ANSWER and s[i] + e[j] > best[0]:
                best = (float(s[i] + e[j]), int(i) + first, int(j) + first)
    return best


def read(item: dict[str, Any], windows: Windows, logits_of: Any) -> dict[str, Any]:
    """The best span over the paragraph's windows and the no-answer margin (null score minus the
    best span's: higher means "not in the paragraph")."""
    best = (-1e9, "")
    null = 1e9
    for w in windows(item["question"], item["context"]):
        start, end = logits_of(w["ids"])
        null = min(null, float(start[0] + end[0]))
        score, i, j = best_span(np.asarray(start), np.asarray(end), w["first"], len(w["ids"]) - 1)
        if score > best[0]:
            best = (score, item["context"][w["offsets"][i][0]:w["offsets"][j][1]])
    return {"answer": best[1], "margin": null - best[0], "score": best[0], "null": null}


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive's score > a negative's), ties halved."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    return float(greater + 0.5 * (pos[:, None] == neg[None, :]).mean())


def abstention(margins: np.ndarray, unanswerable: np.ndarray, threshold: float) -> tuple[float, float]:
    refused = margins > threshold
    if not refused.any():
        return 0.0, 0.0
    return float(unanswerable[refused].mean()), float(refused[unanswerable].mean())


def threshold_for(margins: np.ndarray, unanswerable: np.ndarray, precision: float = 0.8) -> float:
    """The lowest margin threshold whose abstentions are at least ``precision`` unanswerable
    (the most recall at that precision)."""
    best = float(margins.max()) + 1
    for th in np.sort(margins)[::-1]:
        p, _ = abstention(margins, unanswerable, th - 1e-9)
        if p >= precision:
            best = float(th) - 1e-9
    return best


def score(items: list[dict[str, Any]], outputs: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    unanswerable = np.array([not it["answers"] for it in items])
    margins = np.array([o["margin"] for o in outputs])
    answerable = [(it, o) for it, o in zip(items, outputs) if it["answers"]]
    em_all = [max(float(normalize(o["answer"]) == normalize(a)) for a, _ in it["answers"]) for it, o in answerable]
    f1_all = [max(token_f1(o["answer"], a) for a, _ in it["answers"]) for it, o in answerable]
    kept = [o["margin"] <= threshold for _, o in answerable]
    p, r = abstention(margins, unanswerable, threshold)
    oracle = threshold_for(margins, unanswerable)
    op, orr = abstention(margins, unanswerable, oracle)
    return {"questions": len(items), "answerable": len(answerable), "unanswerable": int(unanswerable.sum()),
            "span_em_f1_always_answering": [round(float(np.mean(em_all)), 3), round(float(np.mean(f1_all)), 3)],
            "em_f1_at_threshold": [round(float(np.mean([e * k for e, k in zip(em_all, kept)])), 3),
                                   round(float(np.mean([x * k for x, k in zip(f1_all, kept)])), 3)],
            "answered_answerable": round(float(np.mean(kept)), 3),
            "no_answer_auc": round(auc(margins, unanswerable), 3),
            "abstention_p_r_at_threshold": [round(p, 3), round(r, 3)],
            "abstention_p_r_best_at_p0.8_on_this_set": [round(op, 3), round(orr, 3)]}


def run_eval(items: list[dict[str, Any]], windows: Windows, logits_of: Any) -> tuple[list[dict[str, Any]], float]:
    outputs, times = [], []
    for item in items:
        t0 = time.perf_counter()
        outputs.append(read(item, windows, logits_of))
        times.append(time.perf_counter() - t0)
    return outputs, round(float(np.median(times)) * 1000, 1)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--source", type=Path, nargs="+", required=True,
                    help="SQuAD-format train JSON files; the first holds the evaluation and calibration articles")
    ap.add_argument("--eval-article", default="Spectre_(2015_film)")
    ap.add_argument("--calib-article", default="The_Legend_of_Zelda:_Twilight_Princess")
    ap.add_argument("--eval-limit", type=int, default=300)
    ap.add_argument("--calib-limit", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=15.0, help="training time bound")
    ap.add_argument("--examples", type=int, default=6000, help="training examples planned (the schedule's length)")
    ap.add_argument("--tuned-layers", type=int, default=6,
                    help="layers tuned, the top ones; below them the encoder's outputs are computed once per row")
    ap.add_argument("--no-cache", action="store_true",
                    help="run the frozen layers at every step instead of caching their outputs")
    ap.add_argument("--negatives", type=float, default=0.35,
                    help="share of questions also paired with another paragraph (no answer)")
    ap.add_argument("--retrieved-negatives", type=float, default=0.0,
                    help="share of answerable questions also paired with the other paragraph of their article "
                         "retrieval would rank first for them (no answer)")
    ap.add_argument("--removed-negatives", type=float, default=0.0,
                    help="share of answerable questions also given their paragraph less the answer's sentence")
    ap.add_argument("--written-negatives", type=float, default=0.0,
                    help="share of answerable questions also rewritten the ways written unanswerables are made "
                         "(a name swapped or blended, an antonym, a negation)")
    ap.add_argument("--swapped-negatives", type=float, default=0.0,
                    help="share of answerable questions also asked with an anchor swapped for one the paragraph lacks")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--shared", type=int, default=1,
                    help="with K > 1, each answerable question is trained with its K-1 most similar other paragraphs "
                         "of its article in one softmax (shared normalization); --examples then counts questions")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", type=int, default=0,
                    help="leave out the first N units of the seed's order: with --init and the seed of the run "
                         "that made that reader, train on the rows it did not see")
    ap.add_argument("--numpy-limit", type=int, default=60, help="eval questions also run on the NumPy path")
    ap.add_argument("--train-on-calib", action="store_true",
                    help="also train on the calibration article (its threshold is then in-sample)")
    ap.add_argument("--save", type=Path, help="write the tuned layers and head here (.npz)")
    ap.add_argument("--init", type=Path,
                    help="start from this reader (saved by --save, or as the package ships it) instead of the "
                         "encoder with a new head: more training on a reader already made")
    ap.add_argument("--peer", type=Path,
                    help="a reader saved by --save (all layers) scored on the same questions in the same run")
    args = ap.parse_args()
    if args.skip < 0:
        ap.error("--skip is a count of units: 0 or more")
    if not 0.0 <= args.retrieved_negatives <= 1.0:
        ap.error("--retrieved-negatives is a share: 0 to 1")
    return args


def split(args: argparse.Namespace, rng: np.random.Generator
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Training items (with no-answer rows), calibration and evaluation items, by article.

    The evaluation and calibration questions are drawn from the first source as the pilot drew
    them (its seeded generator after its synthetic negatives over that file's other articles), so
    runs on more data are scored on the same questions."""
    sources = load_sources(args.source)
    by_title = {a["title"]: a for a in sources[0]}
    for name in (args.eval_article, args.calib_article):
        if name not in by_title:
            sys.exit(f"no article {name!r} in {args.source[0]} (the first --source); "
                     f"articles: {', '.join(sorted(by_title))}")
    held_out = (args.eval_article,) if args.train_on_calib else (args.eval_article, args.calib_article)
    pilot_rng = np.random.default_rng(args.seed)
    for a in sources[0]:
        if a["title"] not in held_out:
            synthetic_negatives(a, pilot_rng, 0.35)

    def pick(items: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        return [items[i] for i in sorted(pilot_rng.permutation(len(items))[:n])]

    eval_items = pick(items_of(by_title[args.eval_article]), args.eval_limit)
    calib_items = pick(items_of(by_title[args.calib_article]), args.calib_limit)
    # held out by title from every source, whichever file holds them
    train_articles = [a for articles in sources for a in articles
                      if a["title"] not in (args.eval_article, args.calib_article)
                      or (args.train_on_calib and a["title"] == args.calib_article)]
    train_items = []
    for a in train_articles:
        items = items_of(a)
        if args.shared > 1:
            attach_distractors(a, items, args.shared - 1)
        train_items += items
    easy = [it for a in train_articles for it in synthetic_negatives(a, rng, args.negatives)]
    near_rng = np.random.default_rng(args.seed + 2000)  # its own draws: the other rows stay as they were
    near = [it for a in train_articles for it in retrieved_negatives(a, near_rng, args.retrieved_negatives)]
    removed, swapped = hard_negatives(train_items, rng, args.removed_negatives, args.swapped_negatives)
    written = rewritten(train_items, np.random.default_rng(args.seed + 1000), args.written_negatives)
    counts = {"no_answer_rewritten": dict(collections.Counter(it["kind"] for it in written)),
              "train_articles": len(train_articles), "train_questions": len(train_items),
              "train_written_unanswerable": sum(1 for it in train_items if not it["answers"]),
              "no_answer_other_paragraph": len(easy), "no_answer_retrieved_paragraph": len(near),
              "no_answer_sentence_removed": len(removed),
              "no_answer_anchor_swapped": len(swapped)}
    return train_items + easy + removed + swapped + written + near, calib_items, eval_items, counts


def made_negatives_check(items: list[dict[str, Any]], outputs: list[dict[str, Any]], windows: Windows,
                         logits_of: Any, seed: int) -> dict[str, Any]:
    """How the no-answer margin ranks the made no-answer rows of the evaluation article's own
    answerable questions above those questions: what the made rows teach, against what SQuAD's
    written unanswerables ask."""
    answerable = [(it, o) for it, o in zip(items, outputs) if it["answers"]]
    removed, swapped = hard_negatives([it for it, _ in answerable], np.random.default_rng(seed), 1.0, 1.0)
    base = np.array([o["margin"] for _, o in answerable])
    written = rewritten([it for it, _ in answerable], np.random.default_rng(seed + 1000), 1.0)
    report = {}
    for name, negs in (("sentence_removed", removed), ("anchor_swapped", swapped), ("rewritten", written)):
        margins = np.array([read(n, windows, logits_of)["margin"] for n in negs])
        both = np.concatenate([margins, base])
        report[name] = {"rows": len(negs), "no_answer_auc_against_the_answerable": round(
            auc(both, np.arange(len(both)) < len(negs)), 3)}
    return report


def serve_checks(encoder: MiniLMEncoder, reader: Reader, windows: Windows, items: list[dict[str, Any]],
                 torch_out: list[dict[str, Any]], threshold: float, args: argparse.Namespace) -> dict[str, Any]:
    """The tuned reader on the encoder's NumPy path (float32, then 8-bit matrices): no torch."""
    weights = reader.export()
    if args.save:
        arrays = {f"l{i}_{j}": w for i, layer in enumerate(weights[0]) for j, w in enumerate(layer)}
        np.savez(args.save, head_w=weights[1], head_b=weights[2], **arrays)  # type: ignore[arg-type]
    sub = items[:args.numpy_limit]
    if not sub:  # --numpy-limit 0: the reader saved, no serving paths compared
        return {}
    q8 = ([tuple(to_8bit(w) if j in MATRICES else w for j, w in enumerate(layer)) for layer in weights[0]],
          weights[1], weights[2])
    report = {f"eval_torch_first_{len(sub)}": score(sub, torch_out[:len(sub)], threshold)}
    graph = OnnxLayers(weights[0], encoder.dim, encoder.heads, encoder.eps)
    paths = {"numpy_float32": lambda ids: numpy_logits(encoder, weights, ids),
             "numpy_8bit": lambda ids: numpy_logits(encoder, q8, ids),
             "onnx_8bit": lambda ids: onnx_logits(encoder, graph, weights[1:], ids)}
    for name, logits_of in paths.items():
        out, p50 = run_eval(sub, windows, logits_of)
        same = float(np.mean([o["answer"] == t["answer"] for o, t in zip(out, torch_out)]))
        report[f"eval_{name}_first_{len(sub)}"] = {**score(sub, out, threshold), "p50_ms": p50,
                                                   "same_answer_as_torch": round(same, 3)}
    return report


def peer_scores(path: Path, calib_items: list[dict[str, Any]], eval_items: list[dict[str, Any]],
                args: argparse.Namespace) -> dict[str, Any]:
    """A saved reader on the same calibration and evaluation questions, served on the
    onnxruntime 8-bit graph (its threshold from the calibration article, as for the one trained)."""
    windows, logits_of = onnx_reader(path, args.max_tokens, args.stride)
    calib_out, _ = run_eval(calib_items, windows, logits_of)
    threshold = threshold_for(np.array([o["margin"] for o in calib_out]),
                              np.array([not it["answers"] for it in calib_items]))
    eval_out, p50 = run_eval(eval_items, windows, logits_of)
    return {"reader": path.name, "calib": score(calib_items, calib_out, threshold),
            "eval_onnx_8bit": {**score(eval_items, eval_out, threshold), "p50_ms": p50}}


def main() -> None:
    args = parse_args()
    import torch  # training only: serving runs on NumPy

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_items, calib_items, eval_items, counts = split(args, rng)
    encoder = MiniLMEncoder(runtime="numpy")
    windows = Windows(encoder, args.max_tokens, args.stride)
    rows, units = training_rows(train_items, windows)
    reader = Reader(torch, encoder, args.tuned_layers)
    if args.init:
        reader.load(*load_weights(args.init, encoder.layers))

    def torch_logits(ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            s, e = reader(torch.tensor([ids]), torch.ones((1, len(ids))))
        return s[0].numpy(), e[0].numpy()

    report: dict[str, Any] = {
        "data": {"source": [p.name for p in args.source], **counts, "train_rows": len(rows), "train_units": len(units),
                 "train_no_answer_units": sum(1 for u in units if rows[u[0]][1] == 0),
                 "calib_article": args.calib_article, "eval_article": args.eval_article},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "source"}}
    base_out, _ = run_eval(eval_items[:60], windows, torch_logits)
    report["untrained_eval_first_60"] = score(eval_items[:60], base_out, 0.0)
    report["training"] = train(torch, reader, rows, units, args, encoder)
    calib_out, _ = run_eval(calib_items, windows, torch_logits)
    threshold = threshold_for(np.array([o["margin"] for o in calib_out]),
                              np.array([not it["answers"] for it in calib_items]))
    report["threshold_from_calib"] = round(threshold, 3)
    report["calib"] = score(calib_items, calib_out, threshold)
    eval_out, p50 = run_eval(eval_items, windows, torch_logits)
    report["eval_torch"] = {**score(eval_items, eval_out, threshold), "p50_ms": p50}
    report["eval_made_negatives"] = made_negatives_check(eval_items, eval_out, windows, torch_logits, args.seed)
    report.update(serve_checks(encoder, reader, windows, eval_items, eval_out, threshold, args))
    if args.peer:
        report["peer"] = peer_scores(args.peer, calib_items, eval_items, args)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
