"""A prebuilt extractor extended with a user's own examples (``litegate train NAME --base receipt``):
each field's scorer is refitted on the candidates of the user's documents, pulled toward the
shipped weights, so a few examples adjust it to the user's documents without forgetting what
it learned from many layouts. Stored as versions under ``<home>/prebuilts/NAME/vN/``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from litegate.documents import fieldtypes
from litegate.documents.prebuilt import SPECS, _weights, candidates_for, layout, model
from litegate.documents.prebuilt.candidates import Candidate
from litegate.errors import ExtractorNotFound, InvalidRequest
from litegate.nano.versions import VersionedStore

PRIOR = 1.0  # how strongly the shipped weights hold: the pull toward them against each example's loss
MAX_EXAMPLES = 5000


@dataclass
class ExtendedInfo:
    name: str
    version: int
    base: str
    fields: dict[str, str]
    examples: int
    trained_at: float
    # per field: training documents whose right value the scorer picks, with the shipped weights and after
    right_before: dict[str, float] = field(default_factory=dict)
    right_after: dict[str, float] = field(default_factory=dict)
    encoder: str | None = None  # none: a prebuilt reads layout, not word vectors


class Extended:
    def __init__(self, info: ExtendedInfo, scorers: dict[str, model.FieldScorer]):
        self.info = info
        self.scorers = scorers

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        body = {"info": asdict(self.info), "fields": {f: s.as_json() for f, s in self.scorers.items()}}
        tmp = folder / "weights.json.tmp"
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
        tmp.replace(folder / "weights.json")

    @classmethod
    def load(cls, folder: Path) -> Extended:
        body = json.loads((folder / "weights.json").read_text())
        scorers = {f: model.FieldScorer(w["weights"], w["bias"], w.get("threshold", 0.5))
                   for f, w in body["fields"].items()}
        return cls(ExtendedInfo(**body["info"]), scorers)

    @classmethod
    def load_info(cls, folder: Path) -> ExtendedInfo:
        return ExtendedInfo(**json.loads((folder / "weights.json").read_text())["info"])


def _squash(value: Any) -> str:
    return re.sub(r"[^0-9a-z+]", "", str(value).lower())


def matches(kind: str, cand: Candidate, truth: Any, currency: str | None = None) -> bool:
    """Whether a candidate is the value a user labeled (as printed or normalized)."""
    if truth is None or (isinstance(truth, str) and not truth.strip()):
        return False
    if kind in ("string", "address"):
        return _squash(cand.value.value) == _squash(truth)
    wanted = fieldtypes.normalize(kind, str(truth), currency)
    if wanted is None:
        return _squash(cand.value.text) == _squash(truth)
    if kind == "money":
        return cand.value.amount is not None and abs(cand.value.amount - (wanted.amount or 0.0)) < 0.005
    if kind == "id":
        return _squash(cand.value.value) == _squash(wanted.value)
    return str(cand.value.value) == str(wanted.value)


def check_examples(base: str, examples: list[dict[str, Any]]) -> None:
    if base not in SPECS:
        raise ExtractorNotFound(f"--base must be a prebuilt extractor ({', '.join(SPECS)}), not {base!r}",
                                param="base")
    if not examples:
        raise InvalidRequest("no examples: give {\"text\", \"data\": {field: value}} lines", param="examples")
    if len(examples) > MAX_EXAMPLES:
        raise InvalidRequest(f"{len(examples):,} examples; at most {MAX_EXAMPLES:,}", param="examples")
    spec = SPECS[base]
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict) or not isinstance(ex.get("text"), str) or not ex["text"].strip():
            raise InvalidRequest("each example needs 'text': the document's text (what `litegate read` prints)",
                                 param=f"examples.{i}.text")
        data = ex.get("data")
        if not isinstance(data, dict):
            raise InvalidRequest("each example needs 'data': {field: value}", param=f"examples.{i}.data")
        unknown = [k for k in data if k not in spec]
        if unknown:
            raise InvalidRequest(f"{unknown[0]!r} is not a field of {base} ({', '.join(spec)})",
                                 param=f"examples.{i}.data.{unknown[0]}")


def _rows(base: str, examples: list[dict[str, Any]]) -> dict[str, list[tuple[list[Candidate], list[int]]]]:
    """Per field, per document that labels it: its candidates and which of them are right."""
    spec = SPECS[base]
    out: dict[str, list[tuple[list[Candidate], list[int]]]] = {f: [] for f, s in spec.items()
                                                               if s.source != "currency"}
    for ex in examples:
        page = layout.from_text(ex["text"])
        currency = fieldtypes.currency_of(ex["text"])
        pools: dict[str, list[Candidate]] = {}
        for f in out:
            if f not in ex["data"]:
                continue  # a field the example does not label teaches nothing about it
            pool = pools.setdefault(spec[f].source, candidates_for(page, spec[f].source, currency, base))
            out[f].append((pool, [int(matches(spec[f].type, c, ex["data"][f], currency)) for c in pool]))
    return out


def refit(prior: model.FieldScorer, rows: list[tuple[dict[str, float], int]], strength: float = PRIOR
          ) -> model.FieldScorer:
    """A logistic scorer fitted to ``rows`` (class-balanced, as the shipped one) with an L2 pull
    toward ``prior``'s weights instead of toward zero."""
    import numpy as np
    from scipy.optimize import minimize

    names = sorted(set(prior.weights) | {k for f, _ in rows for k in f})
    index = {n: i for i, n in enumerate(names)}
    x = np.zeros((len(rows), len(names)))
    for r, (feats, _) in enumerate(rows):
        for k, v in feats.items():
            x[r, index[k]] = v
    y = np.array([label for _, label in rows], dtype=float)
    pos = max(y.sum(), 1.0)
    neg = max(len(y) - y.sum(), 1.0)
    weight = np.where(y > 0, len(y) / (2 * pos), len(y) / (2 * neg))
    w0 = np.array([prior.weights.get(n, 0.0) for n in names] + [prior.bias])

    def loss(theta: Any) -> tuple[float, Any]:
        z = x @ theta[:-1] + theta[-1]
        p = 1 / (1 + np.exp(-np.clip(z, -40, 40)))
        nll = -np.sum(weight * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
        d = theta - w0
        g = weight * (p - y)
        grad = np.concatenate([x.T @ g, [g.sum()]]) + strength * d
        return float(nll + 0.5 * strength * d @ d), grad

    theta = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    return model.FieldScorer({n: float(w) for n, w in zip(names, theta[:-1])}, float(theta[-1]), prior.threshold)


def _right_share(scorer: model.FieldScorer, docs: list[tuple[list[Candidate], list[int]]]) -> float:
    if not docs:
        return 0.0
    right = 0
    for pool, labels in docs:
        best, _ = scorer.best(pool)
        right += int(best is not None and any(lab and c is best for c, lab in zip(pool, labels)))
    return round(right / len(docs), 3)


def train(name: str, base: str, examples: list[dict[str, Any]], version: int = 1) -> Extended:
    check_examples(base, examples)
    shipped = _weights(base)["scorers"]
    scorers: dict[str, model.FieldScorer] = {}
    before: dict[str, float] = {}
    after: dict[str, float] = {}
    for f, docs in _rows(base, examples).items():
        prior = shipped.get(f)
        if prior is None:
            continue
        flat = [(c.features, lab) for pool, labels in docs for c, lab in zip(pool, labels)]
        scorers[f] = refit(prior, flat) if docs and any(lab for _, lab in flat) else prior
        if docs:
            before[f], after[f] = _right_share(prior, docs), _right_share(scorers[f], docs)
    fields = {f: s.description for f, s in SPECS[base].items()}
    info = ExtendedInfo(name, version, base, fields, len(examples), time.time(), before, after)
    return Extended(info, scorers)


class PrebuiltStore(VersionedStore):
    """Extended prebuilt extractors under ``<home>/prebuilts``, versioned like trained ones."""

    kind = "prebuilt"
    not_found = ExtractorNotFound
    train_hint = "extend one with `litegate train {name} --base receipt --data FILE.jsonl`"

    def __init__(self, home: Path):
        super().__init__(home, Extended.load, Extended.load_info)

    def train(self, name: str, base: str, examples: list[dict[str, Any]]) -> ExtendedInfo:
        self.check_name(name)
        if name in SPECS:
            raise InvalidRequest(f"{name!r} is a prebuilt extractor's own name; give the extended one another name",
                                 param="name")
        ext = train(name, base, examples, self.next_version(name))
        self.put(name, ext.info.version, ext)
        return ext.info
