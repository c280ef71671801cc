"""The HTTP server: OpenAI-compatible routes today, more APIs alongside."""

from litegate.server.app import create_app

__all__ = ["create_app"]
