"""Learning from review and from stronger tiers: the nano tier gets better with use.

A classifier or extractor trained with ``learn`` keeps the input text of each call made to it
(on any tier) in the ``examples`` table beside the ledger, with what was answered and how
sure. Three things label those rows:

- a person, through ``POST /v1/feedback`` with ``"correct"`` (or the review page);
- a stronger tier, when a call escalated to it (or was shadowed by it) and its calibrated
  confidence cleared its threshold; such *teacher* labels weigh half a human label, and a
  human label always replaces a teacher's;
- nothing else: no other table stores texts (``purge`` deletes them).

``distill`` retrains from the user's original examples plus every collected label and scores
the candidate against the active version on the new labels, which the active version has
never seen: they are split into up to five folds, each scored by a candidate trained without
it (human labels are the yardstick when there are any; teacher labels then only train). The
candidate is promoted, refitted on everything, only if it is not worse; the old version stays
for ``rollback``. The review queue lists unlabeled calls that went to human review
or fell under a confidence, most informative first (smallest margin, least typical).

Why one module (over 400 lines): the examples table, review, distill and rollback share the
table and its locks; what differs per model kind is in ``learning.adapters``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
import time
from typing import Any

import numpy as np
from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text, delete, func, select, update

from litegate.errors import Conflict, FeedbackNotFound, InvalidRequest, LitegateError
from litegate.learning.adapters import KIND_OF_TASK, KINDS, ModelKind
from litegate.ledger.calls import metadata
from litegate.ledger.writer import SerialWorker
from litegate.nano.encoders import MemoEncoder

log = logging.getLogger("litegate.learning.loop")

TEACHER_WEIGHT = 0.5  # a stronger tier's label counts half a person's
HOLDOUT_FOLDS = 5  # the new labels are scored in this many held-back folds
REVIEW_BELOW = 0.5  # the review queue's default confidence bound
TYPICALITY_WEIGHT = 0.25  # review order: margin + this x similarity to the training set (lowest first)

examples = Table(
    "examples", metadata,
    Column("id", String(64), primary_key=True),  # the call's id, as in the ledger
    Column("ts", Float, nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # classifier / extractor
    Column("name", String(64), nullable=False, index=True),
    Column("version", Integer),  # the model's version when the call was made
    Column("text", Text, nullable=False),
    Column("prediction", Text),  # JSON: what was answered, in the task's shape
    Column("confidence", Float),
    Column("margin", Float),  # top minus second probability (classify); the weakest field (extract)
    Column("typicality", Float),  # cosine to the nearest training example
    Column("tier", String(32)),
    Column("outcome", String(16)),  # answered / human_review
    Column("escalated", Boolean, default=False),
    Column("label", Text),  # JSON: the right answer, in the task's shape, once known
    Column("label_source", String(16)),  # human / teacher
    Column("teacher_tier", String(32)),
    Column("label_ts", Float),
    Column("trained_in", Integer),  # the version first trained with this label (null: new)
)

class Learner:
    """Owns the examples table; records calls in the background, takes corrections, distills."""

    def __init__(self, engine: Any, classifiers: Any, extractors: Any, ledger: Any = None, distill_every: int = 0,
                 teacher_min_confidence: float = 0.9, students: frozenset[str] = frozenset({"nano"})):
        self.engine = engine
        self.stores = {"classifier": classifiers, "extractor": extractors}
        self.students = students  # the tiers that run the learning models: never their own teachers
        self.ledger = ledger
        self.distill_every = distill_every
        self.teacher_min_confidence = teacher_min_confidence
        examples.create(engine, checkfirst=True)
        self._writer = SerialWorker("examples write", log)  # recording never sits on a request's path
        self._background: set[tuple[str, str]] = set()
        self._background_lock = threading.Lock()

    def flush(self, timeout: float = 30.0) -> None:
        self._writer.flush(timeout)

    def kind(self, kind: str) -> ModelKind:
        self.store(kind)
        return KINDS[kind]

    def store(self, kind: str) -> Any:
        if kind not in self.stores:
            raise InvalidRequest(f"learning applies to {' and '.join(KINDS)}s, not {kind!r}", param="kind")
        return self.stores[kind]

    # -- observing calls --------------------------------------------------------------------

    def observe(self, done: Any) -> None:
        """A task-runner observer: keeps the text of calls to a learning model."""
        kind = KIND_OF_TASK.get(done.spec.name)
        name = getattr(done.request, kind, None) if kind else None
        if not kind or not name:
            return
        # the request's view of the store: the model it already read, the vectors it computed
        store = getattr(done.context, kind + "s", None) if getattr(done, "context", None) is not None else None
        store = store if store is not None else self.stores[kind]
        try:
            model = store.get(name)
        except LitegateError:
            return
        if not getattr(model.info, "learn", False):
            return
        result = dict(done.result)
        text = done.request.text
        teacher = None
        if result.get("escalated") and result.get("tier") not in self.students:
            threshold = self._threshold(done.policy, result["tier"])
            if result.get("confidence", 0.0) >= threshold:
                teacher = result["tier"]
        self._writer.submit(lambda: self._record(kind, name, model, text, result, teacher, store))

    def _threshold(self, policy: Any, tier: str) -> float:
        for step in getattr(policy, "steps", None) or []:
            if step.tier == tier and step.threshold > 0:
                return float(step.threshold)
        return self.teacher_min_confidence

    def _record(self, kind: str, name: str, model: Any, text: str, result: dict[str, Any],
                teacher: str | None, store: Any = None) -> None:
        adapter = KINDS[kind]
        answer = adapter.answer_of(result)
        margin = adapter.margin(result)
        typicality = model.similarity(text, (store or self.stores[kind]).encoder_for(model))
        row = {"id": result["id"], "ts": time.time(), "kind": kind, "name": name, "version": model.info.version,
               "text": text, "prediction": json.dumps(answer), "confidence": result.get("confidence"),
               "margin": margin, "typicality": typicality, "tier": result.get("tier"),
               "outcome": result.get("outcome"), "escalated": bool(result.get("escalated"))}
        if teacher and answer is not None and adapter.usable(model, text, answer):
            row.update(label=json.dumps(answer), label_source="teacher", teacher_tier=teacher, label_ts=time.time())
        with self.engine.begin() as conn:
            conn.execute(examples.insert().values(**row))
        if "label" in row:
            self._maybe_distill(kind, name)

    def shadowed(self, done: Any, tier: str, output: Any) -> None:
        """A Shadowing listener: a confident stronger tier's answer labels the call."""
        kind = KIND_OF_TASK.get(done.spec.name)
        if not kind or output.confidence < self._threshold(done.policy, tier):
            return
        answer = KINDS[kind].answer_of(output.result)
        call_id = done.result["id"]

        def label() -> None:
            with self.engine.begin() as conn:
                row = conn.execute(select(examples.c.kind, examples.c.name, examples.c.text)
                                   .where(examples.c.id == call_id).where(examples.c.label.is_(None))).first()
                if row is None or answer is None:
                    return
                model = self.stores[row.kind].get(row.name)
                if not KINDS[row.kind].usable(model, row.text, answer):
                    return
                conn.execute(update(examples).where(examples.c.id == call_id).values(
                    label=json.dumps(answer), label_source="teacher", teacher_tier=tier, label_ts=time.time()))
            self._maybe_distill(row.kind, row.name)

        self._writer.submit(label)

    # -- corrections ------------------------------------------------------------------------

    def correct(self, call_id: str, correct: Any) -> dict[str, Any]:
        """A person's right answer for an earlier call; returns the label as kept."""
        self.flush()
        with self.engine.connect() as conn:
            row = conn.execute(select(examples).where(examples.c.id == call_id)).mappings().first()
        if row is None:
            call = self.ledger.get(call_id) if self.ledger is not None else None
            if call is None:
                raise FeedbackNotFound(f"no call with id {call_id!r} in the ledger", param="id",
                                       code="call_not_found")
            if call["task"] not in KIND_OF_TASK:
                raise InvalidRequest(f"call {call_id!r} was a {call['task']} call; corrections apply to classify and "
                                     "extract calls", param="correct")
            raise InvalidRequest(f"call {call_id!r} was not kept for learning: only calls that name a classifier or "
                                 "extractor trained with learn keep their text (retrain it with --learn, or "
                                 '"learn": true)', param="id", code="not_learning")
        model = self.store(row["kind"]).get(row["name"])
        label = self.kind(row["kind"]).check(model, row["text"], correct)
        with self.engine.begin() as conn:
            conn.execute(update(examples).where(examples.c.id == call_id).values(
                label=json.dumps(label), label_source="human", teacher_tier=None, label_ts=time.time(),
                trained_in=None))
        predicted = json.loads(row["prediction"]) if row["prediction"] else None
        agreed = predicted is not None and KINDS[row["kind"]].agree(predicted, label)
        self._maybe_distill(row["kind"], row["name"])
        return {"id": call_id, row["kind"]: row["name"], "correct": label, "agreed": agreed,
                "new_labels": self.counts(row["kind"], row["name"])["new_labels"]}

    # -- what has been collected ------------------------------------------------------------

    def _rows(self, kind: str, name: str, labeled: bool | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        q = select(examples).where(examples.c.kind == kind).where(examples.c.name == name)
        if labeled is True:
            q = q.where(examples.c.label.is_not(None)).order_by(examples.c.label_ts, examples.c.id)
        elif labeled is False:
            q = q.where(examples.c.label.is_(None)).order_by(examples.c.ts.desc())
        else:
            q = q.order_by(examples.c.ts)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def counts(self, kind: str, name: str) -> dict[str, int]:
        """Calls kept and labels collected for one model (one aggregate query)."""
        labeled = examples.c.label.is_not(None)
        q = select(func.count(),
                   func.count().filter(labeled),
                   func.count().filter(labeled & (examples.c.label_source == "human")),
                   func.count().filter(labeled & (examples.c.label_source == "teacher")),
                   func.count().filter(labeled & examples.c.trained_in.is_(None))
                   ).where(examples.c.kind == kind).where(examples.c.name == name)
        with self.engine.connect() as conn:
            calls, labels, human, teacher, new = conn.execute(q).one()
        return {"calls": calls, "labels": labels, "human_labels": human, "teacher_labels": teacher,
                "new_labels": new}

    def purge(self, kind: str, name: str | None = None) -> int:
        """Delete kept texts (one model's, or every one's); returns how many rows went."""
        q = delete(examples).where(examples.c.kind == kind)
        if name:
            q = q.where(examples.c.name == name)
        self.flush()
        with self.engine.begin() as conn:
            return int(conn.execute(q).rowcount or 0)

    # -- the review queue -------------------------------------------------------------------

    def review(self, kind: str, name: str, limit: int = 50, below: float = REVIEW_BELOW) -> dict[str, Any]:
        """Unlabeled calls that went to human review or answered under ``below``, most
        informative first: smallest margin, then least like the training data."""
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidRequest("'limit' must be between 1 and 1000", param="limit")
        if not 0 < below <= 1:
            raise InvalidRequest("'below' must be in (0, 1]", param="below")
        model = self.store(kind).get(name)
        self.flush()
        rows = [r for r in self._rows(kind, name, labeled=False, limit=20_000)
                if r["outcome"] == "human_review" or below >= 1
                or (r["confidence"] is not None and r["confidence"] < below)]
        rows.sort(key=lambda r: (r["margin"] if r["margin"] is not None else 0.0)
                  + TYPICALITY_WEIGHT * (r["typicality"] if r["typicality"] is not None else 0.0))
        items = [{"id": r["id"], "ts": r["ts"], "text": r["text"],
                  "prediction": json.loads(r["prediction"]) if r["prediction"] else None,
                  "confidence": r["confidence"], "margin": r["margin"], "typicality": r["typicality"],
                  "tier": r["tier"], "outcome": r["outcome"], "version": r["version"]} for r in rows[:limit]]
        options = KINDS[kind].options(model)
        return {"object": "list", kind: name, "version": model.info.version, "pending": len(rows), "below": below,
                **options, "data": items}

    # -- distill and rollback ---------------------------------------------------------------

    def _lock(self, kind: str, name: str) -> Any:
        """A non-blocking file lock per name: one distill at a time across threads and
        processes (a CLI run beside a server)."""
        folder = self.store(kind).folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        f = open(folder / ".distill.lock", "w")  # noqa: SIM115 - held until released
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise Conflict(f"a distill of {kind} {name!r} is already running; try again when it ends",
                           code="distill_running") from None
        return f

    def distill(self, kind: str, name: str, progress: Any = None) -> dict[str, Any]:
        """Retrain from the original examples plus the collected labels; promote the candidate
        if it is not worse than the active version on the held-back labels."""
        store = self.store(kind)
        store.check_name(name)
        store.get(name)  # 404 for an unknown name, before taking the lock
        lock = self._lock(kind, name)
        try:
            return self._distill(kind, name, store, progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()

    def _distill(self, kind: str, name: str, store: Any, progress: Any) -> dict[str, Any]:
        started = time.perf_counter()
        self.flush()
        current = store.get(name)
        v = current.info.version
        rows = self._rows(kind, name, labeled=True)
        new = [r for r in rows if r["trained_in"] is None]
        base = current.examples[:current.info.base_examples or len(current.examples)]
        if not new:
            return {"object": "distill", kind: name, "promoted": False, "nothing_to_learn": True, "version": v,
                    "message": f"nothing to learn: no new labels for {name} since v{v}"}
        human = [r for r in new if r["label_source"] == "human"]
        pool = human or new  # what the candidate is measured on
        folds = [pool[i::min(HOLDOUT_FOLDS, len(pool))] for i in range(min(HOLDOUT_FOLDS, len(pool)))]
        waiting: set[str] = set()
        adapter = KINDS[kind]

        def training(rows_: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out = [dict(ex) for ex in base]
            for r in rows_:
                weight = 1.0 if r["label_source"] == "human" else TEACHER_WEIGHT
                out += adapter.rows(current, r["text"], json.loads(r["label"]), weight)
            return adapter.trainable(out, waiting)

        def step(message: str) -> None:
            if progress is not None:
                progress(message)

        encoder = MemoEncoder(store.encoder_for(current))  # each text encoded once across the folds and the refit
        cand_tally = np.zeros(3)
        for k, fold in enumerate(folds):
            step(f"candidate {k + 1}/{len(folds)}: trained without {len(fold)} of the {len(pool)} new labels")
            held_ids = {r["id"] for r in fold}
            candidate = adapter.train(name, current, training([r for r in rows if r["id"] not in held_ids]),
                                      calibrate=False, encoder=encoder, version=v)
            cand_tally += _tally(adapter, candidate, fold, encoder)
        step(f"scoring v{v} on the {len(pool)} new labels")
        cand_score = adapter.score(cand_tally)
        cur_score = adapter.score(_tally(adapter, current, pool, encoder))
        report = {"from_version": v, "held_back": len(pool), "folds": len(folds),
                  "candidate_score": round(cand_score, 4), "current_score": round(cur_score, 4),
                  "metric": adapter.metric,
                  "labels": {"human": sum(r["label_source"] == "human" for r in rows),
                             "teacher": sum(r["label_source"] == "teacher" for r in rows), "new": len(new)},
                  "waiting_labels": sorted(waiting)}
        if cand_score < cur_score:
            return {"object": "distill", kind: name, "promoted": False, "version": v, **report,
                    "message": f"not promoted: the candidate scores {cand_score:.3f} on {_labels(len(pool))}, "
                               f"v{v} scores {cur_score:.3f}; v{v} stays",
                    "seconds": round(time.perf_counter() - started, 2)}
        step("refitting on every label, with calibration")
        waiting.clear()
        final = adapter.train(name, current, training(rows), calibrate=True, encoder=encoder,
                              version=store.next_version(name))
        report["waiting_labels"] = sorted(waiting)  # kept; trainable once they have two examples
        final.info.distilled = dict(report, seconds=round(time.perf_counter() - started, 2))
        store.put(name, final.info.version, final)
        with self.engine.begin() as conn:
            trained = [r["id"] for r in rows if not adapter.waits(json.loads(r["label"]), waiting)]
            conn.execute(update(examples).where(examples.c.id.in_(trained))
                         .where(examples.c.trained_in.is_(None)).values(trained_in=final.info.version))
        return {"object": "distill", kind: name, "promoted": True, "version": final.info.version, **report,
                "message": promoted_message(final.info.version, v, cand_score, cur_score, len(pool),
                                            report["metric"], _new_labels(kind, current, final)),
                "seconds": round(time.perf_counter() - started, 2)}

    def rollback(self, kind: str, name: str) -> dict[str, Any]:
        """Make the version before the active one answer again; labels first trained in the
        versions rolled back count as new again."""
        store = self.store(kind)
        lock = self._lock(kind, name)
        try:
            was, now = store.rollback(name)
            with self.engine.begin() as conn:
                conn.execute(update(examples).where(examples.c.kind == kind).where(examples.c.name == name)
                             .where(examples.c.trained_in > now).values(trained_in=None))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
        return {"object": "rollback", kind: name, "from_version": was, "version": now,
                "message": f"{name}: v{now} answers again (was v{was}); v{was} is kept"}

    def _maybe_distill(self, kind: str, name: str) -> None:
        """With ``distill_every`` set, retrain in a background thread once that many new labels
        have arrived; requests keep being answered by the active version meanwhile."""
        if self.distill_every <= 0:
            return
        key = (kind, name)
        with self._background_lock:
            if key in self._background or self.counts(kind, name)["new_labels"] < self.distill_every:
                return
            self._background.add(key)

        def run() -> None:
            try:
                result = self.distill(kind, name)
                log.info("background distill of %s %s: %s", kind, name, result["message"])
            except Conflict:
                pass
            except Exception as e:  # noqa: BLE001 - a failed background distill must not stop serving
                log.error("background distill of %s %s failed: %s", kind, name, e)
            finally:
                with self._background_lock:
                    self._background.discard(key)

        threading.Thread(target=run, name=f"distill-{name}", daemon=True).start()

    def wait_background(self, timeout: float = 120.0) -> None:
        """Wait for background distills to end (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.flush()
            with self._background_lock:
                if not self._background:
                    return
            time.sleep(0.05)

    # -- the learning curve -----------------------------------------------------------------

    def curve(self, kind: str, name: str, below: float = REVIEW_BELOW) -> dict[str, Any]:
        """Held-back scores per version, and per day the share of calls under ``below``,
        escalated and sent to review."""
        store = self.store(kind)
        store.get(name)
        self.flush()
        active = store.active(name)
        versions = []
        for version in store.versions(name):
            info = store.info(name, version)
            d = info.distilled or {}
            versions.append({"version": version, "trained_at": info.trained_at, "examples": info.examples,
                             "active": version == active, "candidate_score": d.get("candidate_score"),
                             "previous_score": d.get("current_score"), "held_back": d.get("held_back"),
                             "metric": d.get("metric"),
                             "cv_score": getattr(info, "cv_accuracy", None) or getattr(info, "oof_f1", None)})
        days: dict[str, dict[str, Any]] = {}
        for r in self._rows(kind, name):
            day = time.strftime("%Y-%m-%d", time.gmtime(r["ts"]))
            d = days.setdefault(day, {"day": day, "calls": 0, "unsure": 0, "escalated": 0, "reviewed": 0,
                                      "corrected": 0})
            d["calls"] += 1
            d["unsure"] += r["confidence"] is not None and r["confidence"] < below
            d["escalated"] += bool(r["escalated"])
            d["reviewed"] += r["outcome"] == "human_review"
            d["corrected"] += r["label_source"] == "human"
        per_day = []
        for d in sorted(days.values(), key=lambda x: x["day"]):
            n = d["calls"]
            per_day.append({**d, "unsure_share": d["unsure"] / n, "escalated_share": d["escalated"] / n,
                            "reviewed_share": d["reviewed"] / n})
        return {"object": "learning_curve", kind: name, "active_version": active, "below": below,
                "versions": versions, "days": per_day, **self.counts(kind, name)}


def _new_labels(kind: str, current: Any, final: Any) -> list[str]:
    """Labels the promoted classifier knows and the version before it did not."""
    if kind != "classifier":
        return []
    return sorted(set(final.info.labels) - set(current.info.labels))


def promoted_message(version: int, before: int, cand: float, cur: float, held: int, metric: str,
                     learned: list[str]) -> str:
    """What a promotion means, in words: the held-back score of each version, and what to make
    of a tie (both 0 on labels neither version had seen is no measurement, not a bad model)."""
    name = "accuracy" if metric == "accuracy" else "slot F1"
    new = f"; it learned {', '.join(learned)}, which v{before} did not know" if learned else ""
    if cand > cur:
        return (f"v{version} promoted: {name} {cand:.2f} on {held} new labels held back from its training, "
                f"v{before} scored {cur:.2f}{new}")
    if cand == 0 and cur == 0:
        return (f"v{version} promoted: no version answered the {held} new labels right when they were held back "
                f"(labels neither had seen cannot be scored yet){new}; the next labels will measure it")
    return f"v{version} promoted: as good as v{before} on {held} new labels ({name} {cand:.2f} both){new}"


def _labels(n: int) -> str:
    return f"{n} held-back label{'s' if n != 1 else ''}"


def _tally(adapter: ModelKind, model: Any, rows: list[dict[str, Any]], encoder: Any) -> np.ndarray:
    return adapter.tally(model, [r["text"] for r in rows], [json.loads(r["label"]) for r in rows], encoder)
