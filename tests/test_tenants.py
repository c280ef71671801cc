"""Keys that separate tenants, on a real server with two keys and an admin key: every route of
the OpenAPI spec that reads, lists, cancels or deletes a stored object (files, batches, cached
contents, pipeline runs and their deliveries) is driven as the other key, and none of A's
objects reaches B; the admin key sees them all. Idempotency keys are scoped per key."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import free_port, start_server, stop_server

KEYS = {"a": "tenant-a-secret", "b": "tenant-b-secret", "admin": "operator-secret"}
HOLD = """
name = "hold"
[[step]]
name = "ingest"
kind = "ingest"
[[step]]
name = "check"
kind = "review"
reason = "a person looks at every document"
"""
PING = """
name = "ping"
[[step]]
name = "ingest"
kind = "ingest"
[[step]]
name = "tell"
kind = "notify"
url = "http://127.0.0.1:{port}/hook"
max_attempts = 1
timeout_s = 0.5
"""
# the path parameters of the spec's routes that name a stored object, and the words of the paths
# that store, list or act on them: a route matching these and missing from ROUTES fails the test
OBJECT_PATHS = re.compile(r"/(files|batches|cachedContents|fileSearchStores|runs|deliveries|dead-letters|review"
                          r"|stats|classifiers|extractors)\b")
INTENTS = [{"text": t, "label": lab} for lab, ts in {
    "refund": ["I want my money back", "refund my order please", "can I get a refund"],
    "shipping": ["where is my parcel", "when will my order arrive", "track my delivery"]}.items() for t in ts]
FIELDS = [{"text": f"Invoice {n} from {who}", "data": {"vendor": who}}
          for n, who in [("A-1", "Acme"), ("B-2", "Globex"), ("C-3", "Initech"), ("D-4", "Umbrella")]]


def headers(who: str, gemini: bool = False) -> dict[str, str]:
    return {"x-goog-api-key": KEYS[who]} if gemini else {"Authorization": f"Bearer {KEYS[who]}"}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("tenants")
    config = root / "litegate.toml"
    config.write_text("".join(f'[[api_key]]\nname = "{who}"\nkey_sha256 = "{hashlib.sha256(k.encode()).hexdigest()}"\n'
                              + ("admin = true\n" if who == "admin" else "") for who, k in KEYS.items()))
    pipelines = root / "pipelines"
    pipelines.mkdir()
    (pipelines / "hold.toml").write_text(HOLD)
    (pipelines / "ping.toml").write_text(PING.format(port=free_port()))  # nobody listens: a dead letter
    proc, base = start_server(root / "home", "--ctx", "2048", "--config", str(config), "--pipelines", str(pipelines))
    try:
        yield base, _objects_of_a(base)
    finally:
        stop_server(proc)


def _objects_of_a(base: str) -> dict[str, Any]:
    """What tenant A stores: one of each kind of object."""
    a = httpx.Client(base_url=base, headers=headers("a"), timeout=120)
    ga = httpx.Client(base_url=base, headers=headers("a", gemini=True), timeout=120)
    lines = "".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/embeddings",
                                "body": {"input": f"hello {i}"}}) + "\n" for i in range(2))
    file_id = a.post("/v1/files", files={"file": ("in.jsonl", lines.encode())}, data={"purpose": "batch"}).json()["id"]
    batch = a.post("/v1/batches", json={"input_file_id": file_id, "endpoint": "/v1/embeddings",
                                        "completion_window": "24h", "metadata": {"team": "a-secret-project"}}).json()
    deadline = time.monotonic() + 120
    while batch["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        batch = a.get(f"/v1/batches/{batch['id']}").json()
    assert batch["status"] == "completed" and batch["output_file_id"], batch
    start = ga.post("/upload/v1beta/files", json={"file": {"displayName": "a.jsonl", "mimeType": "application/jsonl"}},
                    headers={"x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start"})
    upload_url = start.headers["x-goog-upload-url"]
    gfile = ga.post(upload_url, content=b"not a request line\n", headers={
        "x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"}).json()["file"]["name"]
    gbatch = ga.post("/v1beta/models/lite:batchGenerateContent",
                     json={"batch": {"displayName": "a", "inputConfig": {"fileName": gfile}}}).json()["name"]
    cache = ga.post("/v1beta/cachedContents", json={"model": "models/lite", "contents": [
        {"role": "user", "parts": [{"text": "Tenant A's secret context."}]}], "ttl": "600s"}).json()["name"]
    held = a.post("/v1/pipelines/hold/runs", json={"text": "A's confidential letter"},
                  headers={"Idempotency-Key": "doc-1"}).json()
    assert held["status"] == "human_review", held
    pinged = a.post("/v1/pipelines/ping/runs", json={"text": "A's note"}).json()
    deadline = time.monotonic() + 30
    dead: list[dict[str, Any]] = []
    while not dead and time.monotonic() < deadline:
        time.sleep(0.3)
        dead = a.get("/v1/pipelines/ping/dead-letters").json()["data"]
    assert dead, "the webhook to a closed port should be dead-lettered"
    fss = ga.post("/v1beta/fileSearchStores", json={"displayName": "A's store"}).json()["name"]
    start = ga.post(f"/upload/v1beta/{fss}:uploadToFileSearchStore", json={"displayName": "a.txt"},
                    headers={"x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start"})
    stored = ga.post(start.headers["x-goog-upload-url"], content=b"Tenant A's secret handbook.", headers={
        "x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0"}).json()
    assert stored["done"], stored
    assert a.post("/v1/classifiers", json={"name": "a-intent", "examples": INTENTS}).status_code == 201
    trained = a.post("/v1/classifiers", json={"name": "a-later", "examples": INTENTS, "background": True})
    assert trained.status_code == 202, trained.text
    assert a.post("/v1/extractors", json={"name": "a-fields", "examples": FIELDS}).status_code == 201
    store = a.post("/v1/vector_stores", json={"name": "a-store"}).json()
    assert a.post("/v1/collections", json={"name": "a-docs"}).status_code == 201
    return {"store_id": store["id"], "collection": "a-docs", "file_id": file_id,
            "output_file_id": batch["output_file_id"], "batch_id": batch["id"],
            "gemini_file": gfile, "gemini_batch": gbatch, "cache": cache, "run_id": held["id"],
            "ping_run": pinged["id"], "delivery_id": dead[0]["id"], "file_search_store": fss,
            "file_search_document": stored["response"]["documentName"], "classifier": "a-intent",
            "extractor": "a-fields", "training_job": trained.json()["id"]}


def _fill(path: str, ids: dict[str, Any]) -> str:
    """A spec path with A's object ids in its parameters."""
    gemini = path.startswith(("/v1beta", "/upload")) or "{name}" in path and not path.startswith(
        ("/v1/pipelines", "/v1/classifiers", "/v1/extractors"))
    out = path.replace("{file_id}", ids["file_id"]).replace("{batch_id}", ids["batch_id"])
    out = out.replace("{store_id}", ids["store_id"]).replace("{ref}", ids["collection"])
    out = out.replace("{file_ref}", ids["file_id"])
    out = out.replace("{store}", ids["file_search_store"].split("/")[1])
    out = out.replace("{doc}", ids["file_search_document"].split("/")[-1])
    out = out.replace("{op}", ids["file_search_document"].split("/")[-1])
    out = out.replace("{job_id}", ids["training_job"])
    out = out.replace("{run_id}", ids["run_id"]).replace("{delivery_id}", ids["delivery_id"])
    if path.startswith("/v1/pipelines/"):
        return out.replace("{name}", "ping" if "dead-letters/" in path else "hold")
    if path.startswith(("/v1/classifiers/", "/v1/extractors/")):
        return out.replace("{name}", ids[path.split("/")[2][:-1]])
    if gemini and "/files/" in path:
        return out.replace("{name}", ids["gemini_file"].split("/", 1)[1])
    if gemini and "/batches/" in path:
        return out.replace("{name}", ids["gemini_batch"].split("/", 1)[1])
    if "/cachedContents/" in path:
        return out.replace("{name}", ids["cache"].split("/", 1)[1])
    return out


# (method, spec path) -> what it does with stored objects; "create" routes make B's own objects
ROUTES: dict[tuple[str, str], str] = {}
for _prefix in ("/v1beta", "/v1"):
    ROUTES.update({("get", f"{_prefix}/files/{{name}}"): "read", ("delete", f"{_prefix}/files/{{name}}"): "delete",
                   ("get", f"{_prefix}/batches/{{name}}"): "read", ("delete", f"{_prefix}/batches/{{name}}"): "delete",
                   ("post", f"{_prefix}/batches/{{name}}:cancel"): "cancel",
                   ("get", f"{_prefix}/cachedContents"): "list", ("post", f"{_prefix}/cachedContents"): "create",
                   ("get", f"{_prefix}/cachedContents/{{name}}"): "read",
                   ("patch", f"{_prefix}/cachedContents/{{name}}"): "update",
                   ("delete", f"{_prefix}/cachedContents/{{name}}"): "delete",
                   ("post", f"/upload{_prefix}/files"): "create",
                   ("get", f"{_prefix}/fileSearchStores"): "list", ("post", f"{_prefix}/fileSearchStores"): "create",
                   ("get", f"{_prefix}/fileSearchStores/{{store}}"): "read",
                   ("delete", f"{_prefix}/fileSearchStores/{{store}}"): "delete",
                   ("post", f"{_prefix}/fileSearchStores/{{store}}:importFile"): "update",
                   ("post", f"/upload{_prefix}/fileSearchStores/{{store}}:uploadToFileSearchStore"): "update",
                   ("get", f"{_prefix}/fileSearchStores/{{store}}/operations/{{op}}"): "read",
                   ("get", f"{_prefix}/fileSearchStores/{{store}}/upload/operations/{{op}}"): "read",
                   ("get", f"{_prefix}/fileSearchStores/{{store}}/documents"): "read",
                   ("get", f"{_prefix}/fileSearchStores/{{store}}/documents/{{doc}}"): "read",
                   ("delete", f"{_prefix}/fileSearchStores/{{store}}/documents/{{doc}}"): "delete"})
ROUTES.update({
    # a collection or vector store of A's is not found for B, nor anything in it; adding to one is
    # refused the same way (tests/unit/test_collection_store.py: only the owner's stored files)
    ("get", "/v1/vector_stores/{store_id}/files"): "read", ("post", "/v1/vector_stores/{store_id}/files"): "create",
    ("get", "/v1/vector_stores/{store_id}/files/{file_id}"): "read",
    ("delete", "/v1/vector_stores/{store_id}/files/{file_id}"): "delete",
    ("get", "/v1/collections/{ref}/files"): "read", ("post", "/v1/collections/{ref}/files"): "create",
    ("delete", "/v1/collections/{ref}/files/{file_ref}"): "delete",
    ("get", "/v1beta/files"): "list", ("get", "/v1beta/batches"): "list",
    ("get", "/v1/files"): "list", ("post", "/v1/files"): "create",
    ("get", "/v1/files/{file_id}"): "read", ("delete", "/v1/files/{file_id}"): "delete",
    ("get", "/v1/files/{file_id}/content"): "read",
    ("get", "/v1/batches"): "list", ("post", "/v1/batches"): "create",
    ("get", "/v1/batches/{batch_id}"): "read", ("post", "/v1/batches/{batch_id}/cancel"): "cancel",
    ("get", "/v1/pipelines/{name}/runs"): "list", ("post", "/v1/pipelines/{name}/runs"): "create",
    ("get", "/v1/pipelines/{name}/runs/{run_id}"): "read",
    ("post", "/v1/pipelines/{name}/runs/{run_id}/retry"): "update",
    ("post", "/v1/pipelines/{name}/runs/{run_id}/review"): "update",
    ("get", "/v1/pipelines/{name}/review"): "list", ("get", "/v1/pipelines/{name}/deliveries"): "list",
    ("get", "/v1/pipelines/{name}/dead-letters"): "list",
    ("post", "/v1/pipelines/{name}/dead-letters/{delivery_id}/retry"): "update",
    ("get", "/v1/pipelines/{name}/stats"): "list", ("get", "/v1/review"): "learning",  # see the last test
})
for _kind in ("classifiers", "extractors"):  # names are per key (a key trains its own: see the test below)
    ROUTES.update({("get", f"/v1/{_kind}"): "list", ("post", f"/v1/{_kind}"): "create",
                   ("get", f"/v1/{_kind}/{{name}}"): "read", ("post", f"/v1/{_kind}/{{name}}/distill"): "learning",
                   ("post", f"/v1/{_kind}/{{name}}/rollback"): "learning"})
ROUTES[("get", "/v1/classifiers/jobs/{job_id}")] = "read"  # a background training job


def _a_ids(ids: dict[str, Any]) -> list[str]:
    return [str(v).split("/", 1)[-1] for v in ids.values()]


def test_no_route_reaches_another_keys_objects(tenants: tuple[str, dict[str, Any]]) -> None:
    base, ids = tenants
    spec = httpx.get(base + "/openapi.json", headers=headers("a")).json()
    routes = [(m, p) for p, ops in spec["paths"].items() for m in ops if OBJECT_PATHS.search(p)]
    unlisted = [r for r in routes if r not in ROUTES]
    assert not unlisted, f"routes that store or list objects, missing from this test's table: {unlisted}"
    crossed, driven = [], 0
    for method, path in routes:
        kind = ROUTES[(method, path)]
        if kind in ("create", "learning"):
            continue
        url = _fill(path, ids)
        gemini = ("{name}" in path and not path.startswith(("/v1/pipelines", "/v1/classifiers", "/v1/extractors"))
                  or path.startswith("/v1beta"))
        body = {"approve": False} if path.endswith("/review") and method == "post" else (
            {"ttl": "60s"} if method == "patch" else None)
        r = httpx.request(method.upper(), base + url, headers=headers("b", gemini), json=body, timeout=60)
        driven += 1
        if kind == "list":
            leaked = [i for i in _a_ids(ids) if i in r.text]
            if r.status_code != 200 or leaked:
                crossed.append((method, url, r.status_code, leaked))
            if path.endswith("/stats"):
                assert r.json()["runs"] == 0, r.text  # B ran nothing
        elif r.status_code != 404:
            crossed.append((method, url, r.status_code, r.text[:200]))
    print(json.dumps({"routes_driven_as_b": driven, "cross_tenant": len(crossed)}))
    assert crossed == [], crossed
    # everything of A is still there and whole for A, and the admin key sees it
    a, admin = httpx.Client(base_url=base, headers=headers("a")), httpx.Client(base_url=base, headers=headers("admin"))
    assert a.get(f"/v1/files/{ids['file_id']}/content").status_code == 200
    assert a.get(f"/v1/pipelines/hold/runs/{ids['run_id']}").json()["status"] == "human_review"
    for client in (a, admin):  # A's training job is A's and the operator's to see
        assert client.get(f"/v1/classifiers/jobs/{ids['training_job']}").json()["name"] == "a-later"
    for client in (a, admin):
        assert client.get(f"/v1/batches/{ids['batch_id']}").json()["metadata"] == {"team": "a-secret-project"}
        listed = client.get("/v1/files").text
        assert ids["file_id"] in listed and ids["output_file_id"] in listed
        assert ids["run_id"] in client.get("/v1/pipelines/hold/runs").text
    gadmin = httpx.Client(base_url=base, headers=headers("admin", gemini=True))
    assert ids["cache"] in gadmin.get("/v1beta/cachedContents").text
    assert ids["gemini_batch"] in gadmin.get("/v1beta/batches").text


def test_a_file_id_of_another_key_is_not_found_where_files_are_read(tenants: tuple[str, dict[str, Any]]) -> None:
    base, ids = tenants
    b = httpx.Client(base_url=base, headers=headers("b"), timeout=60)
    r = b.post("/v1/batches", json={"input_file_id": ids["file_id"], "endpoint": "/v1/embeddings",
                                    "completion_window": "24h"})
    assert r.status_code == 404, r.text
    r = b.post("/v1/pipelines/hold/runs", json={"files": [{"file_id": ids["file_id"]}]})
    assert r.status_code == 404, r.text
    r = b.post("/v1/tasks/classify", json={"labels": ["x", "y"], "files": [{"file_id": ids["file_id"]}]})
    assert r.status_code == 404, r.text
    gb = httpx.Client(base_url=base, headers=headers("b", gemini=True), timeout=60)
    r = gb.post("/v1beta/models/lite:batchGenerateContent",
                json={"batch": {"inputConfig": {"fileName": ids["gemini_file"]}}})
    assert r.status_code == 404, r.text
    r = gb.post("/v1beta/models/lite:generateContent", json={"contents": [{"parts": [{"text": "x"}]}],
                                                             "cachedContent": ids["cache"],
                                                             "generationConfig": {"maxOutputTokens": 1}})
    assert r.status_code == 404, r.text


def test_idempotency_keys_are_per_key_and_a_reused_key_with_another_body_conflicts(
        tenants: tuple[str, dict[str, Any]]) -> None:
    base, ids = tenants
    a = httpx.Client(base_url=base, headers=headers("a"), timeout=60)
    b = httpx.Client(base_url=base, headers=headers("b"), timeout=60)
    mine = b.post("/v1/pipelines/hold/runs", json={"text": "B's own letter"}, headers={"Idempotency-Key": "doc-1"})
    assert mine.status_code == 201 and mine.json()["id"] != ids["run_id"], mine.text
    assert "confidential" not in mine.text
    again = a.post("/v1/pipelines/hold/runs", json={"text": "A's confidential letter"},
                   headers={"Idempotency-Key": "doc-1"})
    assert again.status_code == 200 and again.json()["id"] == ids["run_id"] and again.json()["replayed"]
    other = a.post("/v1/pipelines/hold/runs", json={"text": "another letter"}, headers={"Idempotency-Key": "doc-1"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused", other.text


def test_the_ledger_is_per_key_and_the_learning_surfaces_need_an_admin_key(
        tenants: tuple[str, dict[str, Any]]) -> None:
    base, ids = tenants
    b = httpx.Client(base_url=base, headers=headers("b"), timeout=60)
    admin = httpx.Client(base_url=base, headers=headers("admin"), timeout=60)
    # A's batch lines are ledgered under A (their feature is the batch id): B's report leaves them out
    assert ids["batch_id"] not in b.get("/v1/report").text
    assert ids["batch_id"] in admin.get("/v1/report").text
    for path in ("/v1/review?classifier=any", "/dashboard/learning?classifier=any"):
        r = b.get(path)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_key_required", r.text
        assert admin.get(path).status_code != 403
    assert b.post("/v1/classifiers/any/distill").status_code == 403


def test_classifier_and_extractor_names_are_per_key_and_the_operators_serve_every_key(
        tenants: tuple[str, dict[str, Any]]) -> None:
    base, _ = tenants
    a = httpx.Client(base_url=base, headers=headers("a"), timeout=120)
    b = httpx.Client(base_url=base, headers=headers("b"), timeout=120)
    admin = httpx.Client(base_url=base, headers=headers("admin"), timeout=120)
    # B cannot use A's classifier, and training the same name makes B's own: A's answers do not change
    r = b.post("/v1/tasks/classify", json={"text": "where is my parcel", "classifier": "a-intent", "tier": "nano"})
    assert r.status_code == 404, r.text
    flipped = [{"text": x["text"], "label": "other" if x["label"] == "refund" else "mine"} for x in INTENTS]
    assert b.post("/v1/classifiers", json={"name": "a-intent", "examples": flipped}).status_code == 201
    for client, labels in ((a, {"refund", "shipping"}), (b, {"other", "mine"})):
        got = client.get("/v1/classifiers/a-intent").json()
        assert set(got["labels"]) == labels and got["versions"] == [1], got
        out = client.post("/v1/tasks/classify", json={"text": "where is my parcel", "classifier": "a-intent",
                                                      "tier": "nano"}).json()
        assert out["label"] in labels, out
    # a key may not mark its model for learning (reviewing and retraining are the operator's)
    r = b.post("/v1/classifiers", json={"name": "b-learns", "examples": INTENTS, "learn": True})
    assert r.status_code == 403 and r.json()["error"]["param"] == "learn", r.text
    # the operator's (an admin key's) models serve every key, and a key never changes them
    assert admin.post("/v1/classifiers", json={"name": "shared-intent", "examples": INTENTS}).status_code == 201
    for client in (a, b):
        assert "shared-intent" in [c["name"] for c in client.get("/v1/classifiers").json()["data"]]
    assert b.post("/v1/classifiers", json={"name": "shared-intent", "examples": flipped}).status_code == 201
    assert set(a.get("/v1/classifiers/shared-intent").json()["labels"]) == {"refund", "shipping"}
    assert set(admin.get("/v1/classifiers/shared-intent").json()["labels"]) == {"refund", "shipping"}
    assert set(b.get("/v1/classifiers/shared-intent").json()["labels"]) == {"other", "mine"}
