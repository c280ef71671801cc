"""Learning from corrections and stronger tiers, over HTTP against the real app (fake encoder):
corrections, the review queue, distill / promote / refuse / rollback, teacher labels, purge."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fakes import runtime
from fastapi.testclient import TestClient

from litegate.tasks.cascade import CascadePolicy, Shadow, Step
from litegate.tiers import TIER_KINDS, BaseTier, TierConfig

BASE = [{"text": t, "label": "weather"} for t in ("will it rain today", "is it sunny outside", "forecast for snow")] + \
       [{"text": t, "label": "music"} for t in ("play some jazz", "put on a song", "next track please")]


@pytest.fixture()
def rt(tmp_path: Path):
    r = runtime(tmp_path)
    yield r
    r.close()


def train(client: TestClient, learn: bool = True, name: str = "intents") -> None:
    r = client.post("/v1/classifiers", json={"name": name, "examples": BASE, "learn": learn})
    assert r.status_code == 201, r.text
    assert r.json()["learn"] is learn and r.json()["base_examples"] == len(BASE)


def classify(client: TestClient, text: str, name: str = "intents", **extra: Any) -> dict[str, Any]:
    r = client.post("/v1/tasks/classify", json={"text": text, "classifier": name, "tier": "nano", **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_correct_distill_promote_and_rollback(client: TestClient, rt) -> None:
    train(client)
    # nothing collected yet: a one-line answer, not an error
    r = client.post("/v1/classifiers/intents/distill")
    assert r.status_code == 200 and r.json()["nothing_to_learn"] and "nothing to learn" in r.json()["message"]
    ids = [classify(client, t)["id"] for t in ("order a pizza", "get me a large pizza", "pizza delivery now")]
    for i in ids:
        r = client.post("/v1/feedback", json={"id": i, "correct": {"label": "food"}})
        assert r.status_code == 200, r.text
        assert r.json()["correct"] == {"label": "food"} and r.json()["agreed"] is False
        assert r.json()["outcome"] == "failure"  # set from the correction
    rt.accountant.flush()
    assert rt.accountant.ledger.get(ids[0])["outcome"] == "failure"
    r = client.post("/v1/classifiers/intents/distill")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["promoted"] is True and body["version"] == 2 and body["held_back"] == 3 and body["folds"] == 3
    assert body["candidate_score"] >= body["current_score"]
    assert body["labels"] == {"human": 3, "teacher": 0, "new": 3}
    got = classify(client, "a pizza please")
    assert got["model"] == "intents@v2" and got["label"] == "food"  # a label it did not know before
    info = client.get("/v1/classifiers/intents").json()
    assert info["versions"] == [1, 2] and info["distilled"]["from_version"] == 1 and "food" in info["labels"]
    # labels trained in v2 are not new any more
    assert client.post("/v1/classifiers/intents/distill").json()["nothing_to_learn"]
    r = client.post("/v1/classifiers/intents/rollback")
    assert r.status_code == 200 and (r.json()["from_version"], r.json()["version"]) == (2, 1)
    assert classify(client, "a pizza please")["model"] == "intents@v1"
    assert client.post("/v1/classifiers/intents/rollback").status_code == 400  # nothing before v1
    # rolled-back labels count as new again; distilling promotes a v3
    assert client.post("/v1/classifiers/intents/distill").json()["version"] == 3
    assert classify(client, "a pizza please")["model"] == "intents@v3"
    # retraining from examples makes a fresh version the active one
    train(client)
    assert classify(client, "a pizza please")["model"] == "intents@v4"


def test_a_label_with_one_example_waits_for_a_second(client: TestClient, rt) -> None:
    train(client)
    first = classify(client, "book a table for two")["id"]
    client.post("/v1/feedback", json={"id": first, "correct": {"label": "restaurant"}})
    other = classify(client, "will it be windy")["id"]
    client.post("/v1/feedback", json={"id": other, "correct": {"label": "weather"}})
    body = client.post("/v1/classifiers/intents/distill").json()
    assert body["promoted"] and body["waiting_labels"] == ["restaurant"]
    assert "restaurant" not in client.get("/v1/classifiers/intents").json()["labels"]
    second = classify(client, "reserve a table tonight")["id"]
    client.post("/v1/feedback", json={"id": second, "correct": {"label": "restaurant"}})
    body = client.post("/v1/classifiers/intents/distill").json()
    assert body["promoted"] and body["waiting_labels"] == []
    assert "restaurant" in client.get("/v1/classifiers/intents").json()["labels"]


def test_a_worse_candidate_is_not_promoted(client: TestClient, rt) -> None:
    from sqlalchemy import update

    from litegate.learning.loop import examples

    train(client)
    # a stronger tier labeled four near-identical requests wrongly; a person labels the fifth
    calls = [classify(client, f"play jazz music please {i}") for i in range(5)]
    assert {c["label"] for c in calls} == {"music"}
    rt.learner.flush()
    with rt.learner.engine.begin() as conn:
        conn.execute(update(examples).where(examples.c.id.in_([c["id"] for c in calls[:4]]))
                     .values(label='{"label": "weather"}', label_source="teacher", teacher_tier="big", label_ts=1.0))
    client.post("/v1/feedback", json={"id": calls[4]["id"], "correct": {"label": "music"}})
    body = client.post("/v1/classifiers/intents/distill").json()
    # measured on the human label only: the candidate taught by the wrong teacher is worse
    assert body["held_back"] == 1 and body["labels"] == {"human": 1, "teacher": 4, "new": 5}
    assert body["promoted"] is False and body["version"] == 1 and "not promoted" in body["message"]
    assert body["candidate_score"] < body["current_score"] == 1.0
    assert client.get("/v1/classifiers/intents").json()["versions"] == [1]


@pytest.mark.parametrize("correct, status, param", [
    ({"label": ""}, 400, "correct.label"),
    ({"labels": "music"}, 400, "correct.labels"),
    ({"label": "a", "labels": ["b"]}, 400, "correct"),
    ({"answer": "music"}, 400, "correct.answer"),
    ("music", 400, "correct"),
    ({"data": {"city": "Paris"}}, 400, "correct.data"),
])
def test_corrections_in_the_wrong_shape_are_400s_naming_the_field(client: TestClient, rt, correct: Any,
                                                                   status: int, param: str) -> None:
    train(client)
    call = classify(client, "will it snow")
    r = client.post("/v1/feedback", json={"id": call["id"], "correct": correct})
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


def test_feedback_errors(client: TestClient, rt) -> None:
    train(client, learn=False, name="plain")
    r = client.post("/v1/feedback", json={"id": "task_nope", "correct": {"label": "music"}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "call_not_found"
    call = classify(client, "will it snow", name="plain")
    r = client.post("/v1/feedback", json={"id": call["id"], "correct": {"label": "music"}})
    assert r.status_code == 400 and "--learn" in r.json()["error"]["message"]
    assert client.post("/v1/feedback", json={"id": call["id"]}).status_code == 400  # neither outcome nor correct
    r = client.post("/v1/feedback", json={"id": call["id"], "outcome": "great", "correct": {"label": "music"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "outcome"
    assert client.post("/v1/feedback", json={"id": call["id"], "outcome": "success"}).json()["outcome"] == "success"
    assert client.post("/v1/classifiers/nope/distill").status_code == 404
    assert client.get("/v1/review").status_code == 400  # names neither
    assert client.get("/v1/review?classifier=plain&extractor=x").status_code == 400


def test_concurrent_distills_of_one_name_get_409(client: TestClient, rt) -> None:
    train(client)
    call = classify(client, "will it snow")
    client.post("/v1/feedback", json={"id": call["id"], "correct": {"label": "weather"}})
    held = rt.learner._lock("classifier", "intents")  # as a distill in another process would
    try:
        r = client.post("/v1/classifiers/intents/distill")
        assert r.status_code == 409 and r.json()["error"]["code"] == "distill_running"
    finally:
        held.close()
    assert client.post("/v1/classifiers/intents/distill").json()["promoted"]


def test_review_queue_lists_unsure_calls_most_informative_first(client: TestClient, rt) -> None:
    train(client)
    # "rain song" mixes the two labels' words (a text naming a label, "music", is sure of it: the
    # label's name is one of its examples)
    calls = [classify(client, text) for text in ("will it rain today", "play some jazz", "tell me a joke", "banana",
                                                  "rain song")]
    unsure = [c for c in calls if c["confidence"] < 0.9]
    assert 2 <= len(unsure) < 5
    body = client.get("/v1/review?classifier=intents&below=0.9").json()
    assert body["labels"] == ["music", "weather"] and body["pending"] == len(unsure)
    assert {x["id"] for x in body["data"]} == {c["id"] for c in unsure}
    margins = [x["margin"] + 0.25 * x["typicality"] for x in body["data"]]
    assert margins == sorted(margins)
    assert {"id", "text", "prediction", "confidence", "margin", "typicality"} <= set(body["data"][0])
    first = body["data"][0]
    client.post("/v1/feedback", json={"id": first["id"], "correct": {"label": "music"}})
    after = client.get("/v1/review?classifier=intents&below=0.9").json()
    assert after["pending"] == len(unsure) - 1 and first["id"] not in {x["id"] for x in after["data"]}
    assert client.get("/v1/review?classifier=intents&limit=0").status_code == 400
    curve = client.get("/v1/learning?classifier=intents&below=0.9").json()
    assert curve["calls"] == 5 and curve["human_labels"] == 1 and curve["days"][0]["unsure_share"] == len(unsure) / 5
    assert [v["version"] for v in curve["versions"]] == [1]
    r = client.delete("/v1/examples?classifier=intents")
    assert r.json()["deleted"] == 5
    assert client.get("/v1/review?classifier=intents&below=0.9").json()["pending"] == 0


def test_texts_are_kept_only_for_learning_models(client: TestClient, rt) -> None:
    from sqlalchemy import select

    from litegate.learning.loop import examples

    train(client, learn=False, name="plain")
    train(client, learn=True, name="intents")
    classify(client, "will it snow", name="plain")
    classify(client, "will it hail", name="intents")
    client.post("/v1/tasks/classify", json={"text": "secret text", "labels": ["a", "b"], "tier": "nano"})
    rt.learner.flush()
    with rt.learner.engine.connect() as conn:
        texts = [r.text for r in conn.execute(select(examples))]
    assert texts == ["will it hail"]


class TeacherTier(BaseTier):
    """A stronger tier for tests: always answers 'music' at the confidence it is given."""

    kind = "teacher"
    capabilities = frozenset({"labels"})
    remote = True
    confidence = 0.95

    def label_scores(self, messages: list[dict[str, Any]], labels: list[str],
                     max_tokens: int | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        rest = (1 - self.confidence) / max(1, len(labels) - 1)
        return {lab: self.confidence if lab == "music" else rest for lab in labels}, {}


@pytest.fixture()
def teacher_rt(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(TIER_KINDS, "teacher", TeacherTier)
    r = runtime(tmp_path, tiers=[TierConfig("nano", "nano"), TierConfig("big", "teacher", model="t")])
    yield r
    r.close()


def test_confident_teacher_answers_become_half_weight_labels(teacher_rt, tmp_path: Path) -> None:
    rt = teacher_rt
    rt.classifiers.train("intents", BASE, learn=True)
    rt.policies.save(CascadePolicy(task="classify", steps=[Step("nano", 1.01, escalate=True), Step("big", 0.9)]))
    sure = rt.tasks.run("classify", {"text": "some rock song", "classifier": "intents"})
    assert sure["escalated"] and sure["tier"] == "big"
    TeacherTier.confidence = 0.6  # under the big tier's threshold: answered, not learned from
    try:
        unsure = rt.tasks.run("classify", {"text": "some pop song", "classifier": "intents"})
    finally:
        TeacherTier.confidence = 0.95
    assert unsure["outcome"] == "human_review"
    curve = rt.learner.curve("classifier", "intents")
    assert (curve["teacher_labels"], curve["human_labels"]) == (1, 0)
    # a person overrides a teacher; the teacher's label alone is half weight in training
    result = rt.learner.distill("classifier", "intents")
    assert result["promoted"] and result["labels"]["teacher"] == 1
    clf = rt.classifiers.get("intents")
    assert [ex.get("weight", 1.0) for ex in clf.examples if ex["text"] == "some rock song"] == [0.5]


def test_shadow_answers_label_calls(teacher_rt) -> None:
    from litegate.tasks.runner import Shadowing

    rt = teacher_rt
    rt.classifiers.train("intents", BASE, learn=True)
    rt.policies.save(CascadePolicy(task="classify", steps=[Step("nano", 0.0)], shadow=Shadow("big", 1.0)))
    shadowing = next(o for o in rt.tasks.observers if isinstance(o, Shadowing))
    shadowing.background = False
    out = rt.tasks.run("classify", {"text": "turn up the volume", "classifier": "intents"})
    assert out["tier"] == "nano"
    rt.learner.flush()
    rows = rt.learner.review("classifier", "intents", below=1.0)
    assert rows["pending"] == 0  # labeled by the shadow tier, so not waiting for review
    curve = rt.learner.curve("classifier", "intents")
    assert curve["teacher_labels"] == 1


def test_background_distill_after_n_labels(tmp_path: Path) -> None:
    rt = runtime(tmp_path, distill_every=2)
    try:
        rt.classifiers.train("intents", BASE, learn=True)
        for text, label in (("will it be foggy", "weather"), ("play the radio", "music")):
            out = rt.tasks.run("classify", {"text": text, "classifier": "intents", "tier": "nano"})
            rt.learner.correct(out["id"], {"label": label})
        rt.learner.wait_background()
        assert rt.classifiers.versions("intents") == [1, 2]
        assert rt.tasks.run("classify", {"text": "x rain", "classifier": "intents", "tier": "nano"})["model"] == \
            "intents@v2"
    finally:
        rt.close()


EXTRACT_BASE = [{"text": f"ship order {n} to {city}", "data": {"order": n, "city": city}}
                for n, city in (("A1", "Paris"), ("B22", "Rome"), ("C3", "Oslo"), ("D44", "Lima"), ("E5", "Kyiv"),
                                ("F66", "Bern"), ("G7", "Riga"), ("H88", "Baku"))]


def test_extractor_corrections_and_distill(client: TestClient, rt) -> None:
    r = client.post("/v1/extractors", json={"name": "orders", "examples": EXTRACT_BASE, "learn": True})
    assert r.status_code == 201, r.text
    call = client.post("/v1/tasks/extract", json={"text": "ship order Z9 to Graz", "extractor": "orders",
                                                  "tier": "nano"}).json()
    bad = client.post("/v1/feedback", json={"id": call["id"], "correct": {"data": {"order": "Q1"}}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "correct.data.order"
    bad = client.post("/v1/feedback", json={"id": call["id"], "correct": {"data": {"zip": "Z9"}}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "correct.data.zip"
    ok = client.post("/v1/feedback", json={"id": call["id"], "correct": {"data": {"order": "Z9", "city": "Graz"}}})
    assert ok.status_code == 200 and ok.json()["correct"] == {"data": {"order": "Z9", "city": "Graz"}}
    body = client.post("/v1/extractors/orders/distill").json()
    assert body["metric"] == "slot_f1" and body["promoted"] and body["version"] == 2
    info = client.get("/v1/extractors/orders").json()
    assert info["examples"] == len(EXTRACT_BASE) + 1 and info["versions"] == [1, 2]
    assert json.loads(json.dumps(client.get("/v1/review?extractor=orders&below=1").json()))["fields"] == \
        {"order": "", "city": ""}


def test_review_page_labels_through_a_form_and_distills(client: TestClient, rt) -> None:
    train(client)
    calls = [classify(client, t) for t in ("order a pizza", "get me a large pizza", "banana bread recipe")]
    page = client.get("/dashboard/learning?classifier=intents")
    assert page.status_code == 200 and "Review queue" in page.text and "Score per version" in page.text
    assert "<script" not in page.text
    pending = client.get("/v1/review?classifier=intents").json()["pending"]
    assert page.text.count('<form method="post" action="/dashboard/learning?') == pending
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert page.text.count(token) == pending + 1  # every form carries this browser's token
    # without the token (or with another one) a form post is refused, whatever else it carries
    for forged in ({}, {"csrf_token": "x." + "0" * 64}):
        r = client.post("/dashboard/learning?classifier=intents", data={"id": calls[0]["id"], "label": "music",
                                                                         **forged})
        assert r.status_code == 403 and "csrf_token_invalid" in r.text
    assert client.post("/dashboard/learning/distill?classifier=intents").status_code == 403
    assert rt.learner.counts("classifier", "intents")["human_labels"] == 0
    r = client.post("/dashboard/learning?classifier=intents", data={"id": calls[0]["id"], "label": "music",
                                                                     "new_label": "food", "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "saved=" in r.headers["location"]
    assert rt.learner.counts("classifier", "intents")["human_labels"] == 1
    bad = client.post("/dashboard/learning?classifier=intents", data={"id": calls[1]["id"], "label": "",
                                                                       "csrf_token": token})
    assert bad.status_code == 400 and "choose a label" in bad.text
    missing = client.post("/dashboard/learning?classifier=intents", data={"id": "task_x", "label": "music",
                                                                           "csrf_token": token})
    assert missing.status_code == 404 and "no call with id" in missing.text
    client.post("/dashboard/learning?classifier=intents", data={"id": calls[1]["id"], "new_label": "food",
                                                                "csrf_token": token})
    done = client.post("/dashboard/learning/distill?classifier=intents", data={"csrf_token": token},
                       follow_redirects=True)
    assert done.status_code == 200 and "v2 promoted" in done.text
    assert "/dashboard/learning?classifier=intents" in client.get("/dashboard").text
    assert client.get("/dashboard/learning").status_code == 400
    assert client.get("/dashboard/learning?classifier=intents&below=x").status_code == 400
    wide = client.get("/dashboard/learning?classifier=intents&below=1&limit=5").text
    assert "below=1&amp;limit=5" in wide  # the forms post back to the same view
    assert client.get("/dashboard/learning?classifier=nope").status_code == 404
