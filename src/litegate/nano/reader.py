"""The nano reader: the fast encoder (all-MiniLM-L6-v2) with its top layers tuned for extractive
question answering and a start/end head over ``[CLS] question [SEP] passage-window [SEP]``,
``[CLS]`` standing for "no answer" (BERT's SQuAD 2.0 recipe). It reads a question against
passages (their plain view: markdown markup left out, ``nano.plain``) and gives each passage's
best span (at most 30 word pieces), quoted from the passage as written, with its score (start +
end logits) and the passage's no-answer score; the margin (the lowest no-answer score less the
best span's) is its evidence that the passages do not say. The shipped reader is two: the first
reads every passage and chooses the one to answer from (its scores compare across passages
best), the second, trained longer, quotes the span of that passage (it finds better spans but
chooses worse; bench/README.md, "the span reader").

No torch here: the tuned layers run as one onnxruntime graph (``nano.tuned``; with only the top
layers tuned, the shipped encoder's own graph runs the lower ones), NumPy the head. What ships
in this package (``reader.npz``, the passage reader, and ``reader_span.npz``, the span reader;
pinned sha256) is, for each, the head and each tuned weight matrix's difference from the
installed encoder's as two rank-128 factors in 8 bits (made by bench/reader_pilot.py and
bench/reader_ship.py from SQuAD 1.1's train set and the first ten articles of SQuAD 2.0's: the
passage reader 46,344 examples in two runs, the span reader 30,000 more from it in a third;
Rajpurkar et al. 2016, 2018; CC BY-SA 4.0; never their dev sets). A span never crosses a pipe
(a table cell's edge).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from litegate.errors import InvalidRequest, ModelFileError
from litegate.nano.onnx_layers import quantize_blocks
from litegate.nano.plain import plain_view
from litegate.nano.tuned import MATRICES, NAMES, TunedLayers, _from_blocks, innermost
from litegate.packages import file_sha256

FILE = "reader.npz"
SHA256 = "491e352bf98e3294c1bf6560c9ac82b99a66d6f2637439cc407e1c47468a5e75"
SPAN_FILE = "reader_span.npz"  # the span reader: trained longer, it quotes better and chooses worse
SPAN_SHA256 = "7fb84d04fe630dfb088fccc9a3f292151e946a6308104abb6c9deaa8f4d81423"
MAX_TOKENS = 256  # word pieces a window holds, question and specials included
STRIDE = 128  # word pieces between the starts of a long passage's windows
MAX_QUESTION = 48  # word pieces of the question kept
MAX_ANSWER = 30  # word pieces a span may hold


@dataclass
class Span:
    """One passage's best span: characters [start, end) of passage ``passage``."""

    passage: int
    start: int
    end: int
    text: str
    score: float  # start + end logits
    null: float  # the passage's no-answer score (the lowest over its windows)
    log_p: float = float("-inf")  # the span's log-probability within its window (start and end softmaxes)


@dataclass
class Reading:
    spans: list[Span]  # each passage's best span, in the passages' order
    best: Span  # the span with the highest score over all passages
    margin: float  # the lowest no-answer score less the best span's: above 0, "the passages do not say"


@dataclass
class ReaderWeights:
    """The reader's layers (float32, as served) and head. Stored with ``rank``, each weight
    matrix is the base encoder's plus a rank-``rank`` difference (its two factors in 8 bits):
    all six layers tuned cost about what two stored whole would."""

    tuned: TunedLayers
    head_w: np.ndarray  # (dim, 2): start, end
    head_b: np.ndarray  # (2,)
    rank: int | None = None

    def save(self, path: Path, base_layers: list[tuple[np.ndarray, ...]] | None = None) -> None:
        """8-bit matrices (whole, or with ``rank`` the factors of their difference from
        ``base_layers``, the base encoder's top layers), the rest float32."""
        if self.rank is not None and (base_layers is None or len(base_layers) != len(self.tuned.layers)):
            raise ValueError("a low-rank reader is stored against the base encoder's layers it was tuned from")
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(
            {"base": self.tuned.base, "total_layers": self.tuned.total_layers, "tuned_layers": len(self.tuned.layers),
             "rank": self.rank, "settings": self.tuned.settings})), "head_w": self.head_w.astype(np.float32),
            "head_b": self.head_b.astype(np.float32)}

        def packed(key: str, w: np.ndarray) -> None:
            arrays[f"{key}_q"], arrays[f"{key}_scale"] = quantize_blocks(w)
            arrays[f"{key}_rows"] = np.array(w.shape[0])

        for i, layer in enumerate(self.tuned.layers):
            for j, (name, value) in enumerate(zip(NAMES, layer)):
                if j not in MATRICES:
                    arrays[f"l{i}_{name}"] = np.asarray(value, np.float32)
                elif self.rank is None:
                    packed(f"l{i}_{name}", value)
                else:
                    assert base_layers is not None
                    u, sv, vt = np.linalg.svd(value - base_layers[i][j], full_matrices=False)
                    packed(f"l{i}_{name}_a", u[:, :self.rank] * sv[:self.rank])
                    packed(f"l{i}_{name}_b", vt[:self.rank])
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path, base_layers: list[tuple[np.ndarray, ...]] | None = None) -> ReaderWeights:
        """``base_layers``: the base encoder's layers (all of them), for a low-rank reader."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                total, count, rank = int(meta["total_layers"]), int(meta["tuned_layers"]), meta.get("rank")
                if rank is not None and (base_layers is None or len(base_layers) != total):
                    raise ModelFileError(f"{path} holds differences from the {meta['base']} encoder's layers; "
                                         "load it with that encoder")

                def unpacked(key: str) -> np.ndarray:
                    return _from_blocks(data[f"{key}_q"], data[f"{key}_scale"], int(data[f"{key}_rows"]))

                layers = []
                for i in range(count):
                    layer = []
                    for j, name in enumerate(NAMES):
                        if j not in MATRICES:
                            layer.append(np.array(data[f"l{i}_{name}"], np.float32))
                        elif rank is None:
                            layer.append(unpacked(f"l{i}_{name}"))
                        else:
                            assert base_layers is not None
                            base = base_layers[total - count + i][j]
                            layer.append((base + unpacked(f"l{i}_{name}_a") @ unpacked(f"l{i}_{name}_b"))
                                         .astype(np.float32))
                    layers.append(tuple(layer))
                head_w, head_b = np.array(data["head_w"], np.float32), np.array(data["head_b"], np.float32)
        except (OSError, ValueError, KeyError) as e:
            raise ModelFileError(f"{path} is not a readable nano reader ({e})") from None
        tuned = TunedLayers(meta["base"], total, layers, dict(meta.get("settings") or {}))
        return cls(tuned, head_w, head_b, None if rank is None else int(rank))


class Reader:
    """The reader over ``base`` (the fast encoder, whose lower layers it shares)."""

    def __init__(self, base: Any, weights: ReaderWeights, span_reader: Reader | None = None):
        self.weights = weights
        self.span_reader = span_reader  # a second reader that quotes the span of the passage this one chooses
        self.encoder = weights.tuned.encoder(base)  # checks the base is the encoder the layers were tuned on
        tok = self.encoder._untruncated
        self._tok = tok
        cls, sep = tok.token_to_id(self.encoder.begin), tok.token_to_id(self.encoder.end)
        if cls is None or sep is None:
            raise ModelFileError(f"the tokenizer of {self.encoder.name} has no {self.encoder.begin} or "
                                 f"{self.encoder.end} token: reinstall its package")
        self._cls, self._sep = int(cls), int(sep)

    def _windows(self, question: str, passages: list[str]) -> list[tuple[int, list[int], list[Any], int]]:
        """(passage, ids, each id's character range or None, first passage piece) per window."""
        q = self._tok.encode(question, add_special_tokens=False).ids[:MAX_QUESTION]
        room = MAX_TOKENS - len(q) - 3
        out = []
        for p, enc in enumerate(self._tok.encode_batch(passages, add_special_tokens=False)):
            start = 0
            while True:
                ids = enc.ids[start:start + room]
                offsets = [None] * (len(q) + 2) + list(enc.offsets[start:start + room]) + [None]
                out.append((p, [self._cls, *q, self._sep, *ids, self._sep], offsets, len(q) + 2))
                if start + room >= len(enc.ids):
                    break
                start += STRIDE
        return out

    def read(self, question: str, passages: list[str]) -> Reading:
        if not question.strip():
            raise InvalidRequest("the reader needs a non-empty question", param="query")
        if not passages or any(not p.strip() for p in passages):
            raise InvalidRequest("the reader needs non-empty passages", param="context")
        views = [plain_view(p) for p in passages]  # markdown markup left out, mapped back below
        # a span stays inside one table cell: each character's count of the pipes before it
        cells = [np.cumsum([c == "|" for c in p]) if "|" in p else None for p in passages]
        windows = self._windows(question, [v[0] for v in views])
        t = max(len(w[1]) for w in windows)
        ids = np.zeros((len(windows), t), np.int64)
        mask = np.zeros((len(windows), t), np.float32)
        for r, (_, seq, _, _) in enumerate(windows):
            ids[r, :len(seq)], mask[r, :len(seq)] = seq, 1.0
        enc = self.encoder
        hidden = enc._run_layers(ids, mask, enc.layers, batch=len(windows) > 8).reshape(len(windows), t, enc.dim)
        logits = hidden @ self.weights.head_w + self.weights.head_b
        best: dict[int, Span] = {}
        for r, (p, seq, offsets, first) in enumerate(windows):
            start, end = logits[r, :, 0], logits[r, :, 1]
            null = float(start[0] + end[0])
            last = len(seq) - 1  # the closing [SEP]
            seen = best.get(p)
            if last <= first:  # a passage of no word pieces (control characters only)
                best[p] = seen or Span(p, 0, 0, "", float("-inf"), null)
                best[p].null = min(best[p].null, null)
                continue
            # the softmaxes run over the window's passage pieces and [CLS] (no answer)
            norm = float(np.logaddexp.reduce(np.append(start[first:last], start[0]))
                         + np.logaddexp.reduce(np.append(end[first:last], end[0])))
            pair = start[first:last, None] + end[None, first:last]
            i, j = np.indices(pair.shape)
            allowed = (j >= i) & (j < i + MAX_ANSWER)
            where = views[p][1]
            cell = cells[p]
            if cell is not None:
                piece_cell = cell[where[[offsets[k][0] for k in range(first, last)]]]
                allowed &= piece_cell[:, None] == piece_cell[None, :]
            pair = np.where(allowed, pair, -np.inf)
            a, b = np.unravel_index(int(np.argmax(pair)), pair.shape)
            score = float(pair[a, b])
            lo, hi = int(where[offsets[first + a][0]]), int(where[offsets[first + b][1] - 1]) + 1
            if seen is None or score > seen.score:
                best[p] = Span(p, lo, hi, passages[p][lo:hi], score, min(null, seen.null) if seen else null,
                               score - norm)
            else:
                seen.null = min(seen.null, null)
        spans = [best[p] for p in range(len(passages))]
        top = max(spans, key=lambda s: s.score)
        margin = min(s.null for s in spans) - top.score
        if self.span_reader is not None:
            top = spans[top.passage] = self._respan(question, passages[top.passage], top)
        return Reading(spans, top, margin)

    def _respan(self, question: str, passage: str, chosen: Span) -> Span:
        """The span reader's best span in the chosen passage (its logits alone: summed with this
        reader's they quote worse, bench/README.md). The score and no-answer score stay this
        reader's: they chose the passage and are what the abstention reads."""
        assert self.span_reader is not None
        quoted = self.span_reader.read(question, [passage]).best
        if not quoted.text.strip():
            return chosen
        return Span(chosen.passage, quoted.start, quoted.end, quoted.text, chosen.score, chosen.null, quoted.log_p)


_readers: dict[int, Reader] = {}
_lock = threading.Lock()


def shipped_path(name: str = FILE) -> Path:
    return Path(str(resources.files("litegate.nano").joinpath(name)))


def _checked(name: str, sha256: str) -> Path:
    path = shipped_path(name)
    if not path.is_file():
        raise ModelFileError(f"the nano reader's weights are missing ({path}); reinstall litegate")
    if file_sha256(path) != sha256:
        raise ModelFileError(f"{path} does not match its pinned sha256; refusing to load it. Reinstall litegate")
    return path


def shipped(base: Any) -> Reader:
    """The shipped reader over ``base`` (made once per encoder; the weights checked against
    their pinned sha256 first): it chooses the passage, its span reader quotes the span."""
    key = id(innermost(base))
    reader = _readers.get(key)
    if reader is None:
        with _lock:
            reader = _readers.get(key)
            if reader is None:
                layers = innermost(base)._layers
                quoter = Reader(base, ReaderWeights.load(_checked(SPAN_FILE, SPAN_SHA256), layers))
                reader = _readers[key] = Reader(base, ReaderWeights.load(_checked(FILE, SHA256), layers), quoter)
    return reader
