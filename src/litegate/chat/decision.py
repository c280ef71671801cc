"""The learned call decision behind ``tool_choice: "auto"``: call a tool or answer in text.

A small calibrated model (stacked logistic regressions on a handful of signals,
``ToolDecision``) replaces the fixed thresholds the decision used to take. The signals, for
the last user message and the tools:

- ``logit_p_call``: the model's own probability of starting a call (one short constrained pass);
- ``tool_match``: the best cosine between the message and a tool's name and description (the
  nano encoder), and ``param_match``, the same with the tool's parameter descriptions;
- ``overlap``: the share of the best tool's own content words the message uses;
- ``fillable``: whether the message states as many numbers as the best tool needs numeric
  arguments — a first look at whether its arguments can come from the conversation (the full
  argument check runs on the generated call, chat/grounding.py);
- the request read against the best tool's required parameters one by one: ``param_mean`` and
  ``param_min``, the encoder's cosine between the message and each parameter's name and
  description, and ``supplied``, the share of them the message states a value for (a number
  for a numeric one, one of its options for an enum, a name, quote, number, date or address for
  a string, any message for free text such as a query or a message body);
- ``name_cover``: how well the request covers the best tool's name, word by word: for each
  content word of the name (generic verbs such as get or calculate left out), the encoder's
  closest word of the request; the least covered one. An on-topic question the tool cannot
  answer usually leaves one word of what the tool computes unmatched ("rate of return" beside
  ``calculate_profit``, "assist average" beside ``average_scoring``);
- once a call is written, ``AfterCall`` may decline it after all: a logistic regression over the
  decision's log-odds, whether the call had to make up values (chat/grounding.py,
  ``Check.made_up``) and ``name_cover`` for the called tool (``AFTER_CALL_FEATURES``);
- ``logit_relevance``: the model's own yes against no to "can this tool answer the request
  exactly?" about the best-matching tool (one scored token on a short prompt of its own), asked
  only when its answer can change the decision (``ToolDecision.settled``).

The shipped weights (``tool_decision.json`` beside this module) were fitted on public
function-calling data whose license allows it plus generated hard negatives (a question paired
with a related tool from another item, which cannot answer it), and on the project's tuning set;
``litegate train --task tool_decision`` refits them with a user's own labeled cases added.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from litegate.chat.fanout import names_or_quotes
from litegate.chat.request import ChatCompletionRequest, prepare_chat
from litegate.chat.tools import ANSWER_PREFIX, CALL_PREFIX
from litegate.chat.values import dates, numbers
from litegate.errors import InvalidRequest
from litegate.tiers.scoring import LabelScorer

ENCODER_FEATURES = ("tool_match", "param_match", "overlap", "fillable", "param_mean", "param_min", "supplied",
                    "name_cover")
# the model's own signals, one LLM pass each: its probability of starting a call, and its yes to
# "can this tool answer the request exactly?" about the best-matching tool
MODEL_FEATURES = ("logit_p_call", "logit_relevance")
FEATURES = ("logit_p_call", *ENCODER_FEATURES, "logit_relevance")
# once a call is written: the decision's log-odds, whether the call made up any value, and how
# well the request covers the called tool's name
AFTER_CALL_FEATURES = ("logit_p_due", "made_up", "name_cover")
SHIPPED = Path(__file__).with_name("tool_decision.json")
# right after a tool result the model answers unless it is sure it needs another call
AFTER_RESULT_P_CALL = 0.9
_WORD = re.compile(r"[^\W\d_]+")
_STOP = frozenset("""a an the and or of to in on at for from by with is are be this that it as into given
specific specified certain based using use get find return returns calculate compute provide information
details data value values number list name type default optional required parameter function""".split())
# words of a tool's name that say how it works, not what it is about (left out of name_cover)
_GENERIC_NAME_WORDS = frozenset("""get calculate calc compute find fetch search lookup look retrieve check create
generate make analyze analysis estimate predict determine convert info information details data tool api by for
of the and with from to in on at list show display query""".split())
_NAME_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])")  # camelCase and snake_case alike
_REQUEST_WORD = re.compile(r"[a-z]+")
_NUMERIC = ("integer", "number", "float")
# a string parameter any message can fill: what to search for, a message's text, a note
_FREE_TEXT = re.compile(r"query|text|message|body|content|descri|topic|keyword|question|prompt|title|subject|term"
                        r"|search|note|comment|summary|details|reason|issue|problem", re.IGNORECASE)


def _content_words(text: str) -> set[str]:
    return {w[:6] for w in _WORD.findall(text.lower().replace("_", " ")) if len(w) > 2 and w not in _STOP}


def tool_text(fn: Any, with_params: bool = False) -> str:
    text = f"{fn.name.replace('_', ' ').replace('.', ' ')}: {fn.description}"
    if with_params:
        props = (fn.parameters or {}).get("properties") or {}
        described = [f"{k.replace('_', ' ')} ({(v or {}).get('description', '')})" for k, v in props.items()
                     if isinstance(v, dict)]
        text += " Takes " + "; ".join(described) if described else ""
    return text


def _numeric_required(fn: Any) -> int:
    params = fn.parameters or {}
    props = params.get("properties") or {}
    return sum(1 for k in params.get("required") or [] if isinstance(props.get(k), dict)
               and props[k].get("type") in _NUMERIC)


def required_params(fn: Any) -> list[tuple[str, dict[str, Any]]]:
    """The parameters a call must fill (every one when the tool marks none required)."""
    params = fn.parameters or {}
    props = params.get("properties") or {}
    return [(k, props[k]) for k in params.get("required") or list(props) if isinstance(props.get(k), dict)]


def supplied(request: str, params: list[tuple[str, dict[str, Any]]]) -> float:
    """The share of ``params`` the request states a value for, by each parameter's kind."""
    if not params:
        return 1.0
    spare_numbers, lowered = len(numbers(request)), request.lower()
    value_like = names_or_quotes(request) or bool(re.search(r"\d|@|https?://", request)) or bool(dates(request))
    got = 0.0
    for name, spec in params:
        if spec.get("type") in _NUMERIC:
            got += spare_numbers > 0
            spare_numbers -= 1
        elif spec.get("type") == "boolean":
            got += 1
        elif spec.get("enum"):
            got += any(str(option).lower()[:6] in lowered for option in spec["enum"])
        elif _FREE_TEXT.search(name) or _FREE_TEXT.search(str(spec.get("description") or "")):
            got += 1
        else:
            got += value_like
    return got / len(params)


def last_user_text(messages: list[dict[str, Any]]) -> str | None:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text") or "" for p in content if isinstance(p, dict))
            return content if isinstance(content, str) else None
    return None


def encoder_signals(encoder: Any, request: str, functions: list[Any]) -> dict[str, float]:
    """The signals that need only the nano encoder (no LLM pass)."""
    return tool_signals(encoder, request, functions)[0]


def name_words(fn: Any) -> list[str]:
    """The content words of a tool's name: what it is about, not how it works."""
    words = _NAME_WORD.findall(fn.name.replace("_", " ").replace(".", " "))
    return [w.lower() for w in words if len(w) > 2 and w.lower() not in _GENERIC_NAME_WORDS]


def tool_signals(encoder: Any, request: str, functions: list[Any], name_cover: bool = True
                 ) -> tuple[dict[str, float], Any]:
    """``encoder_signals``, and the tool they read the request against: the closest by name and
    description (``best_function``'s choice, from the same vectors). Without ``name_cover`` that
    signal is left out (its words are not encoded: a decision that does not read it)."""
    texts = [request] + [tool_text(f) for f in functions] + [tool_text(f, True) for f in functions]
    vectors = encoder.encode(texts)
    n = len(functions)
    short, full = vectors[1:1 + n] @ vectors[0], vectors[1 + n:] @ vectors[0]
    best = functions[int(np.argmax(short))]
    words = _content_words(request)
    own = _content_words(tool_text(best))
    needed = _numeric_required(best)
    params = required_params(best)
    # the parameters, the tool's name words and the request's words in one encoder batch
    param_texts = [f"{k.replace('_', ' ')}: {v.get('description', '')}" for k, v in params]
    named = name_words(best) if name_cover else []
    said = request_words(request) if name_cover else []
    batch = param_texts + named + said
    more = encoder.encode(batch) if batch else np.zeros((0, 1))
    each = more[:len(params)] @ vectors[0] if params else np.array([short.max()])
    signals = {"tool_match": float(short.max()), "param_match": float(full.max()),
               "overlap": len(own & words) / max(len(own), 1),
               "fillable": 1.0 if not needed else min(1.0, len(numbers(request)) / needed),
               "param_mean": float(each.mean()), "param_min": float(each.min()),
               "supplied": supplied(request, params)}
    if name_cover:
        signals["name_cover"] = _name_cover(more, len(params), len(named), len(said))
    return signals, best


def request_words(request: str) -> list[str]:
    return sorted({w for w in _REQUEST_WORD.findall(request.lower()) if len(w) > 2})


def call_name_cover(encoder: Any, request: str, fn: Any) -> float:
    """``name_cover`` for one tool (the one a written call chose), in an encoder batch of its own."""
    named, said = name_words(fn), request_words(request)
    vectors = encoder.encode(named + said) if named and said else np.zeros((0, 1))
    return _name_cover(vectors, 0, len(named), len(said))


def _name_cover(vectors: Any, skip: int, named: int, said: int) -> float:
    """The least covered of the tool's name words: each one's best cosine to a request word."""
    if not named:
        return 1.0  # a name of generic words only: nothing to cover
    if not said:
        return 0.0
    name_vectors, said_vectors = vectors[skip:skip + named], vectors[skip + named:skip + named + said]
    return float((name_vectors @ said_vectors.T).max(axis=1).min())


# the question the relevance pass asks the model about the best-matching tool (one scored token)
RELEVANCE_QUESTION = ("Tool: {name} — {description} (parameters: {parameters})\nRequest: {request}\n"
                      "Can this tool answer the request exactly? Answer yes or no.")
RELEVANCE_LABELS = ["yes", "no"]


def parameter_listing(fn: Any) -> str:
    props = (fn.parameters or {}).get("properties") or {}
    return "; ".join(f"{k} ({(v or {}).get('type', 'any')}): {(v or {}).get('description', '')}".rstrip(": ")
                     for k, v in props.items() if isinstance(v, dict)) or "none"


def relevance_messages(request: str, fn: Any, question: str = RELEVANCE_QUESTION) -> list[dict[str, Any]]:
    return [{"role": "user", "content": question.format(name=fn.name, description=fn.description or "(none)",
                                                        parameters=parameter_listing(fn), request=request)}]


def relevance(scorer: LabelScorer, request: str, fn: Any, question: str = RELEVANCE_QUESTION) -> float:
    """The model's probability that ``fn`` can answer ``request``: its yes against its no, priced
    from one scored token (``scorer`` scores ``RELEVANCE_LABELS``)."""
    scores, _ = scorer.score(relevance_messages(request, fn, question), max_tokens=1)
    return float(scores[RELEVANCE_LABELS[0]])


def best_function(encoder: Any, request: str, functions: list[Any]) -> Any:
    """The tool whose name and description are closest to the request (the encoder's cosine)."""
    vectors = encoder.encode([request] + [tool_text(f) for f in functions])
    return functions[int(np.argmax(vectors[1:] @ vectors[0]))]


def features(p_call: float, signals: dict[str, float]) -> dict[str, float]:
    return {"logit_p_call": logit(p_call), **signals}


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


@dataclass
class AfterCall:
    """Whether a written call is kept after all: one logistic regression over
    ``AFTER_CALL_FEATURES`` (the decision's log-odds, whether the call made up any value, and how
    well the request covers the called tool's name); the call is kept when its score is at
    ``cut`` or above. A bar on made-up values alone left most on-topic calls the tool cannot
    answer standing; the name's cover tells them from due calls that made up one value."""

    coef: list[float]
    intercept: float
    cut: float
    features: list[str] = field(default_factory=lambda: list(AFTER_CALL_FEATURES))

    def score(self, feats: dict[str, float]) -> float:
        return float(self.intercept + sum(c * feats[k] for c, k in zip(self.coef, self.features)))

    def keeps(self, feats: dict[str, float]) -> bool:
        return self.score(feats) >= self.cut

    def as_dict(self) -> dict[str, Any]:
        return {"features": self.features, "coef": self.coef, "intercept": self.intercept, "cut": self.cut}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AfterCall:
        features = list(data.get("features") or [])
        if set(features) - set(AFTER_CALL_FEATURES) or len(features) != len(data.get("coef") or []):
            raise ValueError(f"an after-call check fitted on other features ({features}); refit it")
        return cls([float(c) for c in data["coef"]], float(data["intercept"]), float(data["cut"]), features)


def after_call_features(p_due: float, made_up: int, name_cover: Callable[[], float] | None = None,
                        reads: list[str] | tuple[str, ...] = AFTER_CALL_FEATURES) -> dict[str, float]:
    """The after-call features of a written call; ``name_cover`` is computed only when read."""
    feats = {"logit_p_due": logit(p_due), "made_up": float(made_up > 0)}
    if "name_cover" in reads:
        feats["name_cover"] = name_cover() if name_cover is not None else 1.0
    return feats


@dataclass
class ToolDecision:
    """P(a call is due), in two stacked logistic regressions: one over the encoder's signals
    (``ENCODER_FEATURES``, standardized; cheap to measure, so fitted on many cases), then one
    that mixes its log-odds with the model's own signals, ``MODEL_FEATURES`` (an LLM pass per
    case each, so fitted on the cases where they were measured). A decision whose mix has no
    weight for ``logit_relevance`` (one fitted before it existed) never asks for that pass."""

    coef: list[float]
    intercept: float
    mean: list[float]
    scale: list[float]
    mix: list[float] = field(default_factory=lambda: [0.0, 1.0, 0.0])  # bias, encoder log-odds, MODEL_FEATURES...
    threshold: float = 0.5
    trained_on: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)  # the rows it was fitted on, labeled
    # logit_relevance: the value that stands in where it was not measured, and the range it is clipped to
    relevance_fill: float = 0.0
    relevance_range: list[float] = field(default_factory=lambda: [-9.2, 9.2])
    # the encoder's signals it reads, in the order of ``coef`` (a decision fitted before one was
    # added reads fewer)
    encoder_features: list[str] = field(default_factory=lambda: list(ENCODER_FEATURES))
    # once the call is written: a call that had to make up values (chat/grounding.py, Check.made_up)
    # is kept only at this P(due) or above (None: made-up values do not weigh on the decision)
    made_up_threshold: float | None = None
    # once the call is written, a fitted mix in place of that bar (None: the bar decides)
    after_call: AfterCall | None = None

    def declines_made_up(self, p_due: float | None, made_up: int) -> bool:
        """Whether a written call that made up ``made_up`` values is declined by the bar."""
        return made_up > 0 and p_due is not None and self.made_up_threshold is not None \
            and p_due < self.made_up_threshold

    def declines_written(self, p_due: float | None, made_up: int,
                         name_cover: Callable[[], float] | None = None) -> bool:
        """Whether a written call is declined after all: by the after-call mix when the decision
        has one (``name_cover`` computes the called tool's cover, asked only when the mix reads
        it), else by the bar on made-up values."""
        if p_due is None:
            return False
        if self.after_call is None:
            return self.declines_made_up(p_due, made_up)
        return not self.after_call.keeps(after_call_features(p_due, made_up, name_cover, self.after_call.features))

    @property
    def uses_relevance(self) -> bool:
        return len(self.mix) > 3 and self.mix[3] != 0.0

    def encoder_logit(self, feats: dict[str, float]) -> float:
        x = (np.array([feats[k] for k in self.encoder_features]) - np.array(self.mean)) / np.array(self.scale)
        return float(x @ np.array(self.coef) + self.intercept)

    def _z(self, feats: dict[str, float], relevance: float | None) -> float:
        z = self.mix[0] + self.mix[1] * self.encoder_logit(feats) + self.mix[2] * feats["logit_p_call"]
        if self.uses_relevance:
            lo, hi = self.relevance_range
            z += self.mix[3] * min(max(self.relevance_fill if relevance is None else relevance, lo), hi)
        return z

    def probability(self, feats: dict[str, float]) -> float:
        z = self._z(feats, feats.get("logit_relevance"))
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def settled(self, feats: dict[str, float]) -> bool | None:
        """The decision (call or not) when no value of ``logit_relevance`` can change it, else None:
        the relevance pass is made only when it can tip the decision."""
        if not self.uses_relevance:
            return self.probability(feats) >= self.threshold
        cut = logit(self.threshold)
        ends = {self._z(feats, bound) >= cut for bound in self.relevance_range}
        return ends.pop() if len(ends) == 1 else None

    def as_dict(self) -> dict[str, Any]:
        return {"features": ["logit_p_call", *self.encoder_features, "logit_relevance"], "coef": self.coef,
                "intercept": self.intercept, "mean": self.mean, "scale": self.scale, "mix": self.mix,
                "threshold": self.threshold, "trained_on": self.trained_on,
                "relevance_fill": self.relevance_fill, "relevance_range": self.relevance_range,
                **({"made_up_threshold": self.made_up_threshold} if self.made_up_threshold is not None else {}),
                **({"after_call": self.after_call.as_dict()} if self.after_call is not None else {}),
                "rows": self.rows}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: Path = SHIPPED) -> ToolDecision:
        data = json.loads(path.read_text())
        named = list(data.get("features") or [])
        encoder_features = [f for f in named if f in ENCODER_FEATURES]
        if not named or named[0] != "logit_p_call" or set(named) - set(FEATURES) \
                or len(encoder_features) != len(data.get("coef") or []):
            raise ValueError(f"{path}: a tool decision fitted on other features ({data.get('features')}); "
                             "refit it with `litegate train --task tool_decision`")
        try:
            after_call = AfterCall.from_dict(data["after_call"]) if data.get("after_call") else None
        except ValueError as e:  # say which file, as for the decision's own features
            raise ValueError(f"{path}: {e}") from None
        return cls(data["coef"], data["intercept"], data["mean"], data["scale"], data["mix"],
                   data.get("threshold", 0.5), data.get("trained_on") or {}, data.get("rows") or [],
                   data.get("relevance_fill", 0.0), data.get("relevance_range") or [-9.2, 9.2], encoder_features,
                   data.get("made_up_threshold"), after_call)


def _logistic(x: np.ndarray, y: list[bool], weights: list[float]) -> Any:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    return model.fit(x, np.array(y, dtype=int), sample_weight=np.array(weights))


def fit(rows: list[dict[str, float]], labels: list[bool], weights: list[float] | None = None,
        trained_on: dict[str, Any] | None = None, encoder_features: tuple[str, ...] = ENCODER_FEATURES
        ) -> ToolDecision:
    """Fit the decision on feature rows and whether a call was due. Every row feeds the encoder
    stage (``encoder_features``: every row must carry them); the rows that carry the model's
    signals (``logit_p_call``, and ``logit_relevance`` when any row has it) also feed the mix. The
    rows are kept with the decision, so a user's cases can be added later (``refit``)."""
    weights = weights or [1.0] * len(rows)
    if len(set(labels)) < 2:
        raise ValueError("the tool decision needs labeled cases of both kinds: calls due and answers due")
    x = np.array([[r[k] for k in encoder_features] for r in rows], dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    stage = _logistic((x - mean) / scale, labels, weights)
    model = ToolDecision([float(c) for c in stage.coef_[0]], float(stage.intercept_[0]), mean.tolist(),
                         scale.tolist(), trained_on=trained_on or {"cases": len(rows)},
                         encoder_features=list(encoder_features))
    mixed = [k for k in MODEL_FEATURES if any(r.get(k) is not None for r in rows)]
    measured = [i for i, r in enumerate(rows) if mixed and all(r.get(k) is not None for k in mixed)]
    if "logit_p_call" in mixed and len({labels[i] for i in measured}) == 2:
        z = np.array([[model.encoder_logit(rows[i])] + [rows[i][k] for k in mixed] for i in measured])
        mix = _logistic(z, [labels[i] for i in measured], [weights[i] for i in measured])
        model.mix = [float(mix.intercept_[0])] + [float(c) for c in mix.coef_[0]]
        if "logit_relevance" in mixed:
            seen = sorted(rows[i]["logit_relevance"] for i in measured)
            model.relevance_fill, model.relevance_range = seen[len(seen) // 2], [seen[0], seen[-1]]
    model.rows = [{**{k: round(float(r[k]), 4) for k in FEATURES if r.get(k) is not None}, "call": bool(y),
                   **({"weight": w} if w != 1.0 else {})} for r, y, w in zip(rows, labels, weights)]
    return model


def case_features(engine: Any, encoder: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                  scorer: LabelScorer | None = None, with_relevance: bool = False) -> dict[str, float]:
    """The decision's features for one labeled case, measured the way a request is: the prompt
    ``tool_choice: "auto"`` builds, its scoring pass on ``engine`` (and the relevance pass when
    the decision to be refitted reads it), the encoder's signals."""
    prepared = prepare_chat(ChatCompletionRequest(messages=messages, tools=tools, tool_choice="auto",
                                                  temperature=0))
    scorer = scorer or LabelScorer(engine, [CALL_PREFIX, ANSWER_PREFIX])
    scores, _ = scorer.score(prepared.body["messages"])
    request = last_user_text(messages) or ""
    signals, best = tool_signals(encoder, request, prepared.functions)
    row = features(float(scores[CALL_PREFIX]), signals)
    if with_relevance:
        row["logit_relevance"] = logit(relevance(LabelScorer(engine, RELEVANCE_LABELS), request, best))
    return row


def read_cases(lines: list[dict[str, Any]]) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]], bool]]:
    """A user's labeled cases: ``{"messages": [...], "tools": [...], "call": true|false}`` per line."""
    cases = []
    for n, line in enumerate(lines, 1):
        messages, tools, call = line.get("messages"), line.get("tools"), line.get("call")
        if not isinstance(messages, list) or not messages or not isinstance(tools, list) or not tools \
                or not isinstance(call, bool):
            raise InvalidRequest(f"line {n}: a tool decision case is {{\"messages\": [...], \"tools\": [...], "
                                 f"\"call\": true or false}}; fix or remove the line")
        try:  # checked before any case is measured
            prepare_chat(ChatCompletionRequest(messages=messages, tools=tools, tool_choice="auto"))
        except InvalidRequest as e:
            raise InvalidRequest(f"line {n}: {e.message}") from None
        except ValueError as e:  # the request model's own validation
            raise InvalidRequest(f"line {n}: not a valid chat request ({str(e).splitlines()[0]})") from None
        cases.append((messages, tools, call))
    return cases


def refit(base: ToolDecision, rows: list[dict[str, float]], labels: list[bool], weight: float = 2.0) -> ToolDecision:
    """The shipped decision's rows plus a user's own cases (weighted ``weight`` each), fitted again."""
    old_labels = [bool(r["call"]) for r in base.rows]
    old_weights = [float(r.get("weight", 1.0)) for r in base.rows]
    trained_on = {**base.trained_on, "user_cases": len(rows)}
    model = fit(base.rows + rows, old_labels + labels, old_weights + [weight] * len(rows), trained_on,
                tuple(base.encoder_features))
    model.threshold = base.threshold  # the shipped trade between missed and extra calls
    model.made_up_threshold, model.after_call = base.made_up_threshold, base.after_call
    return model


def load_for(home: Path | None, shipped: bool = True) -> ToolDecision | None:
    """The decision a server uses: the user's refit one in ``home`` if any, else the shipped
    one (when ``shipped``); None (the fixed rule) when neither applies."""
    for path in ([home / "tool_decision.json"] if home is not None else []) + ([SHIPPED] if shipped else []):
        if path.exists():
            return ToolDecision.load(path)
    return None


def decide(model: ToolDecision | None, p_call: float, after_result: bool, messages: list[dict[str, Any]],
           functions: list[Any], encoder: Any, rule: tuple[float, float] = (0.5, 0.16),
           relevant: Callable[[str, Any], float] | None = None) -> dict[str, Any]:
    """Call or answer, and the signals that said so (reported in the reply's ``litegate``);
    without a learned model, the fixed ``rule`` (p_call, tool_match thresholds) decides.
    ``relevant(request, tool)`` is the relevance pass, made only when its answer can change the
    learned decision (``p_relevant`` in the report when it was made)."""
    info: dict[str, Any] = {"p_call": round(p_call, 4), "tool_match": None, "after_result": after_result}
    request = last_user_text(messages)
    reads_cover = model is not None and "name_cover" in model.encoder_features
    signals, best = tool_signals(encoder, request, functions, reads_cover) \
        if encoder is not None and request and functions else (None, None)
    if signals is not None:
        info["tool_match"] = round(signals["tool_match"], 4)
    if after_result:
        call = p_call >= AFTER_RESULT_P_CALL
    elif model is None or signals is None:
        call = rule_of_thresholds(p_call, info["tool_match"], *rule)
    else:
        feats = features(p_call, signals)
        if relevant is not None and request and model.settled(feats) is None:
            started = time.perf_counter()
            p_relevant = relevant(request, best)
            info["p_relevant"], info["relevance_ms"] = round(p_relevant, 4), round(
                (time.perf_counter() - started) * 1000)
            feats["logit_relevance"] = logit(p_relevant)
        due = model.probability(feats)
        info["p_due"] = round(due, 4)
        call = due >= model.threshold
    info["call"] = call
    return info


def rule_of_thresholds(p_call: float, tool_match: float | None, p_threshold: float = 0.5,
                       match_threshold: float = 0.16) -> bool:
    """The fixed rule the learned decision replaced (kept to measure against)."""
    return p_call >= p_threshold or (tool_match is not None and tool_match >= match_threshold)
