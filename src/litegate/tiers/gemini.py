"""``kind = "gemini"``: a Gemini model through the ``google-genai`` SDK (``base_url``
optional). Schemas become ``response_json_schema``; log-probabilities come back as
``logprobsResult`` and are turned into the OpenAI shape the label maths reads."""

from __future__ import annotations

from typing import Any

from litegate.errors import LitegateError, RemoteRejected
from litegate.tiers.remote import RemoteTier
from litegate.tiers.resilience import RETRY_STATUS


class GeminiTier(RemoteTier):
    kind = "gemini"
    requires = ("model",)

    def _make_client(self) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(timeout=int(self.config.timeout_s * 1000),
                                    retry_options=types.HttpRetryOptions(attempts=1))
        if self.config.base_url:
            options.base_url = self.config.base_url
        return genai.Client(api_key=self.api_key(), http_options=options)

    def _request(self, body: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
        from google.genai import types

        system = "\n\n".join(m["content"] for m in body["messages"] if m["role"] == "system")
        contents = [types.Content(role="model" if m["role"] == "assistant" else "user",
                                  parts=[types.Part(text=m["content"])])
                    for m in body["messages"] if m["role"] != "system"]
        config = types.GenerateContentConfig(
            system_instruction=system or None, temperature=body.get("temperature"),
            max_output_tokens=body.get("max_tokens"),
            response_logprobs=bool(body.get("logprobs")) or None,
            logprobs=body.get("top_logprobs") if body.get("logprobs") else None)
        if schema is not None:
            config.response_mime_type = "application/json"
            config.response_json_schema = schema
        response = self.client().models.generate_content(model=self.model, contents=contents, config=config)
        return _gemini_to_openai(response, self.model)

    def classify(self, error: BaseException) -> str | LitegateError | None:
        import httpx
        from google.genai import errors

        if isinstance(error, (httpx.TransportError, httpx.TimeoutException, ConnectionError, TimeoutError)):
            return "transient"
        if isinstance(error, errors.APIError) and int(error.code or 0) in RETRY_STATUS:
            return "transient"
        if isinstance(error, errors.ClientError):
            return RemoteRejected(int(error.code or 400), {"error": {"message": error.message or str(error)}})
        return None


_GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


def _gemini_to_openai(response: Any, model: str) -> dict[str, Any]:
    """A google-genai GenerateContentResponse as an OpenAI chat completion dict."""
    candidate = (response.candidates or [None])[0]
    text = ""
    if candidate is not None and candidate.content is not None:
        text = "".join(p.text or "" for p in candidate.content.parts or [] if not getattr(p, "thought", False))
    finish = getattr(getattr(candidate, "finish_reason", None), "value", None) or "STOP"
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                              "finish_reason": _GEMINI_FINISH.get(finish, "stop")}
    lp = getattr(candidate, "logprobs_result", None)
    if lp is not None and lp.chosen_candidates:
        tops = lp.top_candidates or []
        content = []
        for i, chosen in enumerate(lp.chosen_candidates):
            alts = tops[i].candidates if i < len(tops) and tops[i].candidates else []
            content.append({"token": chosen.token or "", "logprob": chosen.log_probability or 0.0,
                            "top_logprobs": [{"token": a.token or "", "logprob": a.log_probability or 0.0}
                                             for a in alts]})
        choice["logprobs"] = {"content": content}
    meta = response.usage_metadata
    usage = {"prompt_tokens": int(getattr(meta, "prompt_token_count", 0) or 0),
             "completion_tokens": int(getattr(meta, "candidates_token_count", 0) or 0),
             "prompt_tokens_details": {"cached_tokens": int(getattr(meta, "cached_content_token_count", 0) or 0)}}
    return {"id": getattr(response, "response_id", None) or "", "object": "chat.completion", "model": model,
            "choices": [choice], "usage": usage}
