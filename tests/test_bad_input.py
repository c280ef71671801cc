"""Bad requests get the right status and an OpenAI-shaped body that names the problem."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from conftest import TEST_CTX

CHAT = "/v1/chat/completions"


def error_of(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_unknown_model_is_404_openai_shaped(http: httpx.Client) -> None:
    r = http.post(CHAT, json={"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404
    err = error_of(r)
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert "gpt-9" in err["message"] and "lite" in err["message"]


def test_unknown_model_through_sdk_raises_not_found(server: str) -> None:
    client = openai.OpenAI(base_url=server + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])


def test_malformed_json_is_400(http: httpx.Client) -> None:
    r = http.post(CHAT, content=b'{"model": "lite", "messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "JSON" in error_of(r)["message"]


@pytest.mark.parametrize("body, field", [
    ({"model": "lite", "messages": "hello"}, "messages"),
    ({"model": "lite", "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ({"model": "lite", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "temperature"),
    ({"model": "lite", "messages": [{"role": "user", "content": "hi"}], "temperature": 7}, "temperature"),
    ({"model": "lite"}, "messages"),
])
def test_wrong_types_name_the_field(http: httpx.Client, body: dict, field: str) -> None:
    r = http.post(CHAT, json=body)
    assert r.status_code == 400
    err = error_of(r)
    assert err["param"] == field
    assert field in err["message"]


def test_empty_messages_is_400(http: httpx.Client) -> None:
    r = http.post(CHAT, json={"model": "lite", "messages": []})
    assert r.status_code == 400
    assert error_of(r)["param"] == "messages"


@pytest.mark.parametrize("max_tokens", [0, -1])
def test_non_positive_max_tokens_is_400(http: httpx.Client, max_tokens: int) -> None:
    r = http.post(CHAT, json={"model": "lite", "messages": [{"role": "user", "content": "hi"}],
                              "max_tokens": max_tokens})
    assert r.status_code == 400
    assert error_of(r)["param"] == "max_tokens"


def test_max_tokens_over_the_context_is_400(http: httpx.Client) -> None:
    r = http.post(CHAT, json={"model": "lite", "messages": [{"role": "user", "content": "hi"}],
                              "max_tokens": TEST_CTX + 1})
    assert r.status_code == 400
    err = error_of(r)
    assert err["param"] == "max_tokens" and str(TEST_CTX) in err["message"]


def test_prompt_longer_than_context_is_400_with_counts(http: httpx.Client) -> None:
    text = "apple banana cherry " * TEST_CTX
    for stream in (False, True):
        r = http.post(CHAT, json={"model": "lite", "messages": [{"role": "user", "content": text}],
                                  "stream": stream})
        assert r.status_code == 400
        err = error_of(r)
        assert err["code"] == "context_length_exceeded"
        assert err["n_ctx"] == TEST_CTX and err["prompt_tokens"] > TEST_CTX
        assert str(err["prompt_tokens"]) in err["message"]


def test_prompt_plus_max_tokens_over_context_is_400(http: httpx.Client) -> None:
    text = "apple banana cherry " * (TEST_CTX // 4)  # fits, but leaves less than 1500 tokens
    r = http.post(CHAT, json={"model": "lite", "messages": [{"role": "user", "content": text}],
                              "max_tokens": 1500})
    assert r.status_code == 400
    err = error_of(r)
    assert err["param"] == "max_tokens" and err["prompt_tokens"] + 1500 > TEST_CTX


def test_a_broken_image_part_is_refused_clearly(http: httpx.Client) -> None:
    r = http.post(CHAT, json={"model": "lite", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]})
    assert r.status_code == 400
    assert error_of(r)["param"] == "messages.0.content.1"


def test_text_parts_are_accepted(http: httpx.Client) -> None:
    r = http.post(CHAT, json={"model": "lite", "max_tokens": 3, "temperature": 0, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hi"}]}]})
    assert r.status_code == 200, r.text
    whole = http.post(CHAT, json={"model": "lite", "max_tokens": 3, "temperature": 0, "messages": [
        {"role": "user", "content": "Say hi"}]})
    # the parts are joined into one message: the model sees exactly the text of the plain form
    assert r.json()["usage"]["prompt_tokens"] == whole.json()["usage"]["prompt_tokens"]
    assert r.json()["choices"][0]["message"]["content"] == whole.json()["choices"][0]["message"]["content"]


def test_empty_completion_prompt_is_400(http: httpx.Client) -> None:
    r = http.post("/v1/completions", json={"model": "lite", "prompt": ""})
    assert r.status_code == 400 and error_of(r)["param"] == "prompt"


def test_unknown_route_is_404_json(http: httpx.Client) -> None:
    r = http.get("/v1/nothing-here")
    assert r.status_code == 404
    error_of(r)


def test_client_disconnect_cancels_generation(server: str, http: httpx.Client) -> None:
    """A client that hangs up mid-stream stops the generation; others keep being served."""
    body = {"model": "lite", "prompt": "1, 2, 3, 4, 5,", "max_tokens": 1500, "temperature": 0, "stream": True}
    with httpx.Client(base_url=server, timeout=60) as c:
        with c.stream("POST", "/v1/completions", json=body) as r:
            assert r.status_code == 200
            received = 0
            for line in r.iter_lines():
                if line.startswith("data: "):
                    received += 1
                if received >= 5:
                    break
    # 1,500 tokens would take well over 15 s here; a cancelled request is gone in well under.
    deadline = time.monotonic() + 10
    active = None
    while time.monotonic() < deadline:
        active = http.get("/healthz").json()["active_requests"]
        if active == 0:
            break
        time.sleep(0.1)
    assert active == 0, "the abandoned generation is still running"
    r = http.post(CHAT, json={"model": "lite", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    assert r.status_code == 200
