"""summarize, translate, answer (from given passages only), rank."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr, field_validator

from litegate.chat.structured import compile_schema
from litegate.errors import InvalidRequest
from litegate.ledger.pricing import Usage
from litegate.tasks.base import TaskContext, TaskOutput, TaskRequest, TaskSpec, TextRequest, check_size
from litegate.tenancy import current

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


def _supported(answer_text: str, passages: list[Passage]) -> bool:
    """At least half of the answer's words occur in the cited passages, as words: a number
    only as itself ("1" is not in "14 days"), a longer word also as another form of it
    ("laptop" for "laptops")."""
    words = re.findall(r"\w+", answer_text.lower())
    if not words:
        return False
    source = set(re.findall(r"\w+", " ".join(p.text.lower() for p in passages)))
    stems = {w[:5] for w in source if len(w) >= 5 and not w.isdigit()}

    def found(word: str) -> bool:
        return word in source or (len(word) >= 5 and not word.isdigit() and word[:5] in stems)
    return sum(1 for w in words if found(w)) * 2 >= len(words)


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
    question = req.query or req.text
    if not question or not question.strip():
        raise InvalidRequest("'query' (the question) must be a non-empty string", param="query")
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


def answer(ctx: TaskContext, llm: Any, req: AnswerRequest) -> TaskOutput:
    question = req.query or req.text
    if not question or not question.strip():
        raise InvalidRequest("'query' (the question) must be a non-empty string", param="query")
    if req.collection is not None and not req._hits:  # the filters left nothing to read
        return TaskOutput(result={"answer": NOT_IN_DOCUMENTS, "found": False, "citations": [], "sources": []},
                          confidence=1.0, tier=llm.name, model=llm.model)
    passages = _passages(req)
    ids = [p.id for p in passages]
    schema = {"type": "object", "properties": {
        "citations": {"type": "array", "items": {"enum": ids}, "maxItems": len(ids)},
        "answer": {"type": ["string", "null"], "maxLength": 500},
    }, "required": ["citations", "answer"], "additionalProperties": False}
    compiled = compile_schema(schema)
    listing = "\n".join(f"[{p.id}] {p.text}" for p in passages)
    system = ("Answer the question using only the passages below. First list the ids of the passages that "
              "contain the answer, then give a short answer taken from them. If no passage contains the "
              'answer, reply {"citations": [], "answer": null}. Reply with only the JSON object.\n'
              f"Passages:\n{listing}")
    result = llm.chat({"messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
                       "temperature": 0.0, "max_tokens": 300, "logprobs": True, "top_logprobs": 1},
                      schema=compiled)
    usage = Usage()
    usage.add(result)
    if result["choices"][0].get("finish_reason") == "length":
        raise InvalidRequest("the answer did not fit its token budget", param="query", code="output_truncated")
    data = json.loads(result["choices"][0]["message"]["content"])
    citations = list(dict.fromkeys(data.get("citations") or []))
    text = data.get("answer") or ""
    if text.strip() and not citations:
        # small models often skip the ids; cite the passages that contain the answer
        citations = [p.id for p in passages if _supported(text, [p])]
    cited = [p for p in passages if p.id in citations]
    confidence = _mean_token_probability(result)
    grounded = req.collection is not None
    if not cited or not text.strip() or not _supported(text, cited):
        # nothing cited, or an answer the cited passages do not contain: not in context
        result = {"answer": NOT_IN_DOCUMENTS if grounded else NOT_IN_CONTEXT, "found": False, "citations": []}
    else:
        result = {"answer": text, "found": True, "citations": citations}
    if grounded:
        result["sources"] = _sources(req, result["citations"])
    return TaskOutput(result=result, confidence=confidence, tier=llm.name, model=llm.model, usage=usage)


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
    order = np.argsort(-scores, kind="stable")[:top_k]
    return {"ranking": [{"index": int(i), "score": round(float(scores[i]), 6), "text": candidates[int(i)]}
                        for i in order]}


def rank_nano(ctx: TaskContext, tier: Any, req: RankRequest) -> TaskOutput:
    query, candidates, top_k = _rank_inputs(req)
    vectors = tier.embed([query, *candidates])
    scores = vectors[1:] @ vectors[0]
    # how clearly the best candidate beats the runner-up, as a probability
    soft = np.exp((scores - scores.max()) / 0.05)
    return TaskOutput(result=_ranking(scores, candidates, top_k), confidence=float(soft.max() / soft.sum()),
                      tier=tier.name, model=tier.model)


def rank_llm(ctx: TaskContext, llm: Any, req: RankRequest) -> TaskOutput:
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
ANSWER = TaskSpec(name="answer", request=AnswerRequest,
                  summary="Answer from the given passages (or a collection's) only, citing them; 'not in context' "
                          "otherwise.",
                  runs={"chat": answer}, answer_keys=("answer", "citations"), positional=None, prepare=retrieve,
                  metric="answer", gold=("answers",))
RANK = TaskSpec(name="rank", request=RankRequest, summary="Rank candidates for a query (top-k with scores).",
                runs={"embed": rank_nano, "labels": rank_llm}, answer_keys=("ranking",), positional=None)
