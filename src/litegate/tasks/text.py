"""summarize, translate, answer (from given passages only), rank."""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, PrivateAttr, field_validator

from litegate.chat.structured import compile_schema
from litegate.errors import InvalidRequest
from litegate.ledger.pricing import Usage
from litegate.tasks.abstention import SHIPPED_READER, answer_probability, logit_p_null, shipped
from litegate.tasks.base import TaskContext, TaskOutput, TaskRequest, TaskSpec, TextRequest, check_size
from litegate.tasks.candidates import candidates, expected_kind, matches, shown_sentences, span_kind
from litegate.tasks.spans import coverage, echo, focus, rarity, sentences, snap, trim
from litegate.tenancy import current

if TYPE_CHECKING:  # numpy loads where ranks are scored: reading TASKS (the CLI's commands) should not load it
    import numpy as np

NOT_IN_CONTEXT = "not in context"
NOT_IN_DOCUMENTS = "not in the documents"
MAX_CANDIDATES = 200

class SummarizeRequest(TextRequest):
    max_bullets: int = Field(default=5, ge=1, le=50, description="most bullet points")
    max_words: int = Field(default=120, ge=5, le=2000, description="most words in all")

class TranslateRequest(TextRequest):
    cli = {"target_language": {"flag": "--to"}}

    target_language: str | None = Field(default=None, description="the target language, e.g. French or de")

class Passage(BaseModel):
    id: str
    text: str

class AnswerRequest(TextRequest):
    cli = {"context": {"lines_file": True}}

    query: str | None = Field(default=None, description="the question")
    context: list[str | Passage] | None = Field(default=None, description="passages: strings or {id, text}")
    collection: str | None = Field(default=None, max_length=128,
                                   description="a collection (name or id) to retrieve the passages from, instead "
                                               "of context")
    filters: dict[str, Any] | None = Field(default=None, description="with collection: only files whose attributes "
                                                                      "match ({key: value} or OpenAI's filter shape)")
    top_k: int = Field(default=5, ge=1, le=20, description="with collection: how many chunks to retrieve")
    _hits: list[Any] = PrivateAttr(default_factory=list)  # the retrieved chunks behind context

    @field_validator("query")
    @classmethod
    def _query_size(cls, v: str | None) -> str | None:
        return check_size(v)

class RankRequest(TaskRequest):
    cli = {"candidates": {"lines_file": True}}

    query: str | None = Field(default=None, description="what to rank for")
    candidates: list[str] | None = Field(default=None, description="the candidates")
    top_k: int | None = Field(default=None, ge=1, description="keep the best k")

    @field_validator("query")
    @classmethod
    def _query_size(cls, v: str | None) -> str | None:
        return check_size(v)

def _mean_token_probability(result: dict[str, Any]) -> float:
    """exp(mean log-probability) of the generated tokens: the model's own certainty."""
    tokens = (result["choices"][0].get("logprobs") or {}).get("content") or []
    if not tokens:
        return 0.0
    return math.exp(sum(t.get("logprob", 0.0) for t in tokens) / len(tokens))

def _generate(llm: Any, system: str, user: str, max_tokens: int) -> tuple[str, dict[str, Any], Any]:
    result = llm.chat({"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
                       "temperature": 0.0, "max_tokens": max_tokens, "logprobs": True, "top_logprobs": 1})
    return result["choices"][0]["message"]["content"] or "", result, llm

def summarize(ctx: TaskContext, llm: Any, req: SummarizeRequest) -> TaskOutput:
    text = req.require_text()
    system = (f"Summarize the text as at most {req.max_bullets} bullet points, each starting with '- ', "
              f"at most {req.max_words} words in total. Use only facts from the text.")
    out, result, llm = _generate(llm, system, text, max_tokens=int(req.max_words * 2.5) + 16)
    bullets = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip() for line in out.splitlines()]
    bullets = [b for b in bullets if b][: req.max_bullets]
    words_left, bounded = req.max_words, []
    for b in bullets:  # enforce the word budget the model was asked to keep
        words = b.split()
        if words_left <= 0:
            break
        bounded.append(" ".join(words[:words_left]))
        words_left -= len(words)
    usage = Usage()
    usage.add(result)
    return TaskOutput(result={"summary": "\n".join(f"- {b}" for b in bounded), "bullets": bounded},
                      confidence=_mean_token_probability(result), tier=llm.name, model=llm.model, usage=usage)

def translate(ctx: TaskContext, llm: Any, req: TranslateRequest) -> TaskOutput:
    text = req.require_text()
    if not req.target_language or not req.target_language.strip():
        raise InvalidRequest("'target_language' is required (for example 'French' or 'de')", param="target_language")
    system = (f"Translate the user's text into {req.target_language}. Reply with the translation only, "
              "keeping names, numbers and formatting.")
    out, result, llm = _generate(llm, system, text, max_tokens=min(4096, 3 * len(text) // 2 + 32))
    usage = Usage()
    usage.add(result)
    return TaskOutput(result={"translation": out.strip(), "target_language": req.target_language},
                      confidence=_mean_token_probability(result), tier=llm.name, model=llm.model, usage=usage)

def _passages(req: AnswerRequest) -> list[Passage]:
    if not req.context:
        raise InvalidRequest("'context' must hold at least one passage (strings or {id, text})", param="context")
    passages = [p if isinstance(p, Passage) else Passage(id=str(i + 1), text=p) for i, p in enumerate(req.context)]
    ids = [p.id for p in passages]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("'context' passage ids must be unique", param="context")
    if any(not p.text.strip() for p in passages):
        raise InvalidRequest("'context' contains an empty passage", param="context")
    return passages

def _question(req: AnswerRequest) -> str:
    """The question an answer request asks (``query``, or the text given in its place)."""
    question = req.query or req.text
    if not question or not question.strip():
        raise InvalidRequest("'query' (the question) must be a non-empty string", param="query")
    return question


def _nothing_to_read(req: AnswerRequest, tier: Any) -> TaskOutput | None:
    """The reply when a collection's search (with its filters) left no chunk to read."""
    if req.collection is None or req._hits:
        return None
    return TaskOutput(result={"answer": NOT_IN_DOCUMENTS, "found": False, "citations": [], "sources": []},
                      confidence=1.0, tier=tier.name, model=tier.model)


def retrieve(ctx: TaskContext, req: AnswerRequest, api_key: str | None) -> None:
    """With ``collection``: the question's best chunks become the passages (once per call,
    as the caller's tenant: a key searches only its own collections)."""
    if req.collection is None:
        if req.filters is not None:
            raise InvalidRequest("'filters' goes with 'collection'", param="filters")
        return
    if req.context:
        raise InvalidRequest("give either 'context' (passages) or 'collection', not both", param="context")
    if ctx.collections is None:
        raise InvalidRequest("this runner has no collections", param="collection")
    question = _question(req)
    # the caller's tenant owns collections (one anonymous owner on a server without keys)
    req._hits = ctx.collections.search(current().owner, req.collection, question, top_k=req.top_k,
                                       filters=req.filters)
    req.context = [Passage(id=str(i + 1), text=hit.text) for i, hit in enumerate(req._hits)]

def _sources(req: AnswerRequest, citations: list[str]) -> list[dict[str, Any]]:
    """The cited chunks with where they came from (file, page, lines, seconds)."""
    out = []
    for pid in citations:
        hit = req._hits[int(pid) - 1]
        out.append({"id": pid, "chunk_id": hit.chunk_id, "file_id": hit.file_id, "filename": hit.filename,
                    "page": hit.page, "line_start": hit.line_start, "line_end": hit.line_end,
                    "start_s": hit.start_s, "section": hit.section, "where": hit.where(), "score": hit.score,
                    "text": hit.text})
    return out

FOCUS_CHARS = 1200  # what the model reads of the passages: about 300 tokens keep a call short on 2 cores
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": ["string", "null"], "maxLength": 200}},
                 "required": ["answer"], "additionalProperties": False}
ANSWER_PROMPT = ("Answer the question with the shortest exact phrase copied from the passages below: a name, a "
                 "number, a date or a few words, not a sentence. If the passages do not say, reply "
                 '{"answer": null}. Reply with only the JSON object.\nPassages:\n')

def _retrieval_score(req: AnswerRequest, index: int) -> float | None:
    """The cited chunk's cosine with the question (collections only)."""
    if index < len(req._hits):
        value = req._hits[index].scores.get("dense")
        return None if value is None else float(value)
    return None

CHECK_PROMPT = "Decide whether the sentence answers the question. Reply Yes or No."
# the signals _checks reads; its extra model call is made only when the shipped abstention score
# reads one of them, or when bench/answers.py records every signal to fit a new score
CHECK_SIGNALS = frozenset({"sentence_yes", "sentence_coverage", "kind_found", "kind_match"})
RECORD_ALL_SIGNALS = False


def _sentence_of(text: str, start: int) -> str:
    """The sentence of ``text`` that holds the character at ``start``."""
    at = 0
    for sentence in sentences(text):
        at = text.find(sentence, at)  # past the sentences before it: a repeated sentence is found where it stands
        if at <= start < at + len(sentence):
            return sentence
        at += len(sentence)
    return text


def _checks(llm: Any, question: str, shown: list[str], passage: str, span_start: int, answer: str,
            usage: Usage) -> dict[str, float | None]:
    """Signals read around a grounded answer: the model's yes/no on whether the answer's sentence
    answers the question (one scored token), that sentence's coverage of the question's rarer
    words, whether the shown sentences hold a span of the kind the question asks for ("When..." a
    date) and whether the answer is one."""
    sentence = _sentence_of(passage, span_start)
    yes, result = llm.label_scores([{"role": "system", "content": CHECK_PROMPT},
                                    {"role": "user", "content": f"Question: {question}\nSentence: {sentence}"}],
                                   ["Yes", "No"], max_tokens=1)
    usage.add(result)
    kind = expected_kind(question)
    weights = rarity([s for text in shown for s in shown_sentences(text)])
    return {"sentence_yes": yes["Yes"], "sentence_coverage": coverage(question, sentence, weights),
            "kind_found": None if kind is None else float(any(matches(kind, c.kind)
                                                              for c in candidates(question, shown, shown))),
            "kind_match": None if kind is None else float(bool(matches(kind, span_kind(answer))))}


def _unsure(question: str, passages: list[Passage], req: AnswerRequest, result: dict[str, Any]
            ) -> tuple[str, Passage | None, dict[str, float | None], int]:
    """The model's answer as a span of a passage (trimmed of the question's own words), the
    passage, the signals the abstention score reads, and where the span starts."""
    raw = (json.loads(result["choices"][0]["message"]["content"]).get("answer") or "").strip()
    texts = [p.text for p in passages]
    span = snap(raw, texts) if raw else None
    signals: dict[str, float | None] = {
        "logit_p_null": logit_p_null(result), "answer_prob": answer_probability(result),
        "span_f1": span.f1 if span else 0.0,
        "coverage": coverage(question, texts[span.passage]) if span else 0.0,
        "retrieval": _retrieval_score(req, span.passage) if span else None}
    if span is None or span.f1 < 0.5:  # nothing in the passages says it
        return "", None, signals, 0
    text = trim(span.text(texts), question)
    signals["echo"] = echo(question, text)
    return text, passages[span.passage], signals, span.start


def answer(ctx: TaskContext, llm: Any, req: AnswerRequest) -> TaskOutput:
    """A short span of one passage, chosen by the model and snapped to the passage's own words;
    "not in context" when the model finds none or the abstention score is below its threshold
    (the confidence is that score, P(the answer is right), or for an abstention P(unanswerable))."""
    question = _question(req)
    if (nothing := _nothing_to_read(req, llm)) is not None:
        return nothing
    passages = _passages(req)
    shown = focus(question, [p.text for p in passages], FOCUS_CHARS)
    listing = "\n".join(f"[{p.id}] {text}" for p, text in zip(passages, shown) if text)
    result = llm.chat({"messages": [{"role": "system", "content": ANSWER_PROMPT + listing},
                                    {"role": "user", "content": question}],
                       "temperature": 0.0, "max_tokens": 80, "logprobs": True, "top_logprobs": 5},
                      schema=compile_schema(ANSWER_SCHEMA))
    usage = Usage()
    usage.add(result)
    if result["choices"][0].get("finish_reason") == "length":
        raise InvalidRequest("the answer did not fit its token budget", param="query", code="output_truncated")
    text, cited, signals, start = _unsure(question, passages, req, result)
    model = shipped()
    if cited is not None and (RECORD_ALL_SIGNALS or CHECK_SIGNALS & set(model.features)):
        signals.update(_checks(llm, question, shown, cited.text, start, text, usage))
    p_right = model.p_right(signals) if cited is not None else 0.0
    out, confidence = _answer_out(req, text, cited, p_right, model, signals)
    return TaskOutput(result=out, confidence=confidence, tier=llm.name, model=llm.model, usage=usage)


def _answer_out(req: AnswerRequest, text: str, cited: Any, p_right: float, model: Any,
                signals: dict[str, float | None]) -> tuple[dict[str, Any], float]:
    """The answer (citing ``cited``) when its P(right) reaches the abstention model's threshold,
    else "not in the documents" / "not in context" with the unsure answer kept for review."""
    grounded = req.collection is not None
    out: dict[str, Any]
    if cited is not None and p_right >= model.threshold:
        out = {"answer": text, "found": True, "citations": [cited.id]}
        confidence = p_right
    else:
        out = {"answer": NOT_IN_DOCUMENTS if grounded else NOT_IN_CONTEXT, "found": False, "citations": []}
        confidence = model.p_unanswerable(signals)
        if text:
            out["unsure_answer"] = text  # what a reviewer checks
    out["signals"] = {k: None if v is None else round(v, 4) for k, v in signals.items()}
    if grounded:
        out["sources"] = _sources(req, out["citations"])
    return out, confidence


def answer_read(ctx: TaskContext, tier: Any, req: AnswerRequest) -> TaskOutput:
    """The nano reader's answer: the best span over the passages, verbatim, citing its passage;
    "not in the documents" (or "not in context") when the abstention score over its no-answer
    margin and the cited passage's signals is below its threshold (fit for the reader)."""
    question = _question(req)
    if (nothing := _nothing_to_read(req, tier)) is not None:
        return nothing
    passages = _passages(req)
    reading = tier.read(question, [p.text for p in passages])
    span = reading.best
    cited = passages[span.passage]
    text = span.text.strip()
    signals: dict[str, float | None] = {
        "reader_margin": reading.margin, "reader_score": span.score,
        "coverage": coverage(question, cited.text), "retrieval": _retrieval_score(req, span.passage),
        "echo": echo(question, text) if text else None}
    model = shipped(SHIPPED_READER)
    p_right = model.p_right(signals) if text else 0.0
    # an empty span is no answer: abstain, as for an LLM answer citing nothing
    out, confidence = _answer_out(req, text, cited if text else None, p_right, model, signals)
    return TaskOutput(result=out, confidence=confidence, tier=tier.name, model=f"{tier.model} reader")


def _rank_inputs(req: RankRequest) -> tuple[str, list[str], int]:
    query = req.query
    if not query or not query.strip():
        raise InvalidRequest("'query' must be a non-empty string", param="query")
    candidates = req.candidates or []
    if len(candidates) < 1:
        raise InvalidRequest("'candidates' must hold at least one string", param="candidates")
    if len(candidates) > MAX_CANDIDATES:
        raise InvalidRequest(f"'candidates' holds {len(candidates)}; the limit is {MAX_CANDIDATES}",
                             param="candidates")
    if any(not isinstance(c, str) or not c.strip() for c in candidates):
        raise InvalidRequest("'candidates' contains an empty string", param="candidates")
    return query, candidates, min(req.top_k or len(candidates), len(candidates))

def _ranking(scores: np.ndarray, candidates: list[str], top_k: int) -> dict[str, Any]:
    import numpy as np

    order = np.argsort(-scores, kind="stable")[:top_k]
    return {"ranking": [{"index": int(i), "score": round(float(scores[i]), 6), "text": candidates[int(i)]}
                        for i in order]}

def rank_nano(ctx: TaskContext, tier: Any, req: RankRequest) -> TaskOutput:
    import numpy as np

    query, candidates, top_k = _rank_inputs(req)
    vectors = tier.embed([query, *candidates])
    scores = vectors[1:] @ vectors[0]
    # how clearly the best candidate beats the runner-up, as a probability
    soft = np.exp((scores - scores.max()) / 0.05)
    return TaskOutput(result=_ranking(scores, candidates, top_k), confidence=float(soft.max() / soft.sum()),
                      tier=tier.name, model=tier.model)

def rank_llm(ctx: TaskContext, llm: Any, req: RankRequest) -> TaskOutput:
    import numpy as np

    query, candidates, top_k = _rank_inputs(req)
    usage = Usage()
    values = []
    for cand in candidates:  # the shared system prompt stays cached; only the pair is new
        yes_no, result = llm.label_scores([
            {"role": "system", "content": "Decide whether the passage is relevant to the query. Reply Yes or No."},
            {"role": "user", "content": f"Query: {query}\nPassage: {cand}\nRelevant?"}], ["Yes", "No"],
            max_tokens=1)
        usage.add(result)
        values.append(yes_no["Yes"])
    scores = np.array(values)
    return TaskOutput(result=_ranking(scores, candidates, top_k), confidence=float(scores.max()),
                      tier=llm.name, model=llm.model, usage=usage)

SUMMARIZE = TaskSpec(name="summarize", request=SummarizeRequest, summary="Summarize within a bullet and word budget.",
                     runs={"chat": summarize})
TRANSLATE = TaskSpec(name="translate", request=TranslateRequest, summary="Translate into a target language.",
                     runs={"chat": translate}, answer_keys=("translation",))
def _answer_in_cascade(tier: Any, req: Any) -> bool:
    """The default cascade answers on the LLM tiers; the nano reader answers when named (tier "nano")."""
    return "chat" in tier.capabilities

ANSWER = TaskSpec(name="answer", request=AnswerRequest,
                  summary="Answer from the given passages (or a collection's) only, citing them; 'not in context' "
                          "otherwise.",
                  runs={"chat": answer, "reader": answer_read}, answer_keys=("answer", "citations"), positional=None,
                  prepare=retrieve, accepts=_answer_in_cascade,
                  metric="answer", gold=("answers",))
RANK = TaskSpec(name="rank", request=RankRequest, summary="Rank candidates for a query (top-k with scores).",
                runs={"embed": rank_nano, "labels": rank_llm}, answer_keys=("ranking",), positional=None)
