"""Exceptions a caller can catch precisely; each carries a message that says what to do."""

from __future__ import annotations


class LitegateError(Exception):
    """Base of every error litegate raises on purpose."""

    status_code = 500
    error_type = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(LitegateError):
    """The request is malformed or asks for something the model cannot do (HTTP 400)."""

    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    """The prompt (plus the requested output) does not fit the model's context."""

    def __init__(self, message: str, *, prompt_tokens: int | None = None, n_ctx: int | None = None,
                 param: str | None = "messages"):
        super().__init__(message, param=param, code="context_length_exceeded")
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


class PayloadTooLarge(LitegateError):
    """An input is larger than a configured size limit (HTTP 413), e.g. a document over
    ``Limits.max_bytes``."""

    status_code = 413
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = "request_too_large"):
        super().__init__(message, param=param, code=code)


class NotFound(LitegateError):
    """A named thing (task, classifier, call, cached content, batch) does not exist (HTTP 404)."""

    status_code = 404
    error_type = "not_found_error"


class Unauthorized(LitegateError):
    """A required API key is missing or wrong (HTTP 401)."""

    status_code = 401
    error_type = "authentication_error"


class TooManyRequests(LitegateError):
    """A rate limit, budget or capacity limit was reached (HTTP 429, with ``Retry-After``:
    ``retry_after`` seconds, at least 1)."""

    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 retry_after: float = 1.0):
        super().__init__(message, param=param, code=code)
        self.retry_after = retry_after


class RateLimited(TooManyRequests):
    """An API key's rate limit or daily budget is used up."""


class Forbidden(LitegateError):
    """The key is valid but may not do this (a tenant's key on the operator's pages): HTTP 403."""

    status_code = 403
    error_type = "permission_error"


class Conflict(LitegateError):
    """The request collides with work already under way (a second distill of one name: HTTP 409)."""

    status_code = 409
    error_type = "conflict_error"


class StorageError(LitegateError):
    """The home directory cannot take a write (disk full, read-only): HTTP 507. Nothing that
    was written before is lost."""

    status_code = 507
    error_type = "server_error"


class FeedbackNotFound(NotFound):
    """POST /v1/feedback named a call the ledger does not have."""


class UnknownTask(NotFound):
    """The task name is not one of the declared tasks."""


class ClassifierNotFound(NotFound):
    """No trained nano classifier (or version) by that name."""


class ExtractorNotFound(NotFound):
    """No trained nano extractor (or version) by that name."""


class SchemaError(InvalidRequest):
    """A schema that cannot be enforced; ``path`` points into it (``#/properties/a``)."""

    def __init__(self, message: str, path: str, param: str | None = None):
        super().__init__(f"{message} at {path}", param=param, code="invalid_schema")
        self.path = path


class TierUnavailable(InvalidRequest):
    """The requested tier cannot run here (not configured, not installed, or cannot do this task)."""

    def __init__(self, message: str, *, param: str | None = "tier", code: str | None = "tier_unavailable"):
        super().__init__(message, param=param, code=code)


class TierDown(LitegateError):
    """A tier failed after its retries, or its circuit is open (HTTP 503)."""

    status_code = 503
    error_type = "tier_unavailable"

    def __init__(self, tier: str, reason: str):
        super().__init__(f"the {tier} tier is unavailable: {reason}")
        self.tier = tier
        self.reason = reason


class Overloaded(LitegateError):
    """A model's slots and its waiting line are full (HTTP 503 with ``Retry-After``)."""

    status_code = 503
    error_type = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0):
        super().__init__(message, code="overloaded")
        self.retry_after = retry_after


class SchemaViolation(LitegateError):
    """A remote tier's reply does not follow the requested JSON schema (escalates)."""

    status_code = 502
    error_type = "schema_violation"


class RemoteRejected(LitegateError):
    """A remote answered with a 4xx that retrying will not fix: passed on as is."""

    def __init__(self, status: int, body: object):
        message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
        super().__init__(message or f"the remote model answered {status}")
        self.status_code = status
        self.body = body


class ConfigError(InvalidRequest):
    """The config file is missing, not TOML, or declares something invalid."""


class ModelNotFound(LitegateError):
    """The request names a model this server does not serve (HTTP 404)."""

    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, message: str):
        super().__init__(message, param="model", code="model_not_found")


class ModelNotAvailable(LitegateError):
    """An embedded model's packages are not installed, or a path is not a model file."""

    status_code = 404
    error_type = "invalid_request_error"


class ModelFileError(LitegateError):
    """A model file exists but is unusable (wrong checksum, not GGUF, failed to load)."""


class EngineError(LitegateError):
    """The inference engine failed while serving a request."""


class DeadlineExceeded(LitegateError):
    """A generation ran past the per-request decode deadline and was stopped (HTTP 504)."""

    status_code = 504
    error_type = "timeout"


class OutputTruncated(LitegateError):
    """Generation stopped at max_tokens before the structured output was complete."""

    status_code = 422
    error_type = "output_truncated"


class TransientStatus(Exception):
    """An HTTP status worth retrying (429, 5xx), raised inside a remote call so the retry loop
    retries it; never leaves the tier (exhausted retries become TierDown)."""

    def __init__(self, status: int, body: object = None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
