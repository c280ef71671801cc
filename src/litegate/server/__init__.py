"""The HTTP server: one app (``server.app``) over a Runtime, with a folder per API it speaks
(openai/, gemini/, ollama/, responses/, native/ for litegate's own, pages/ for HTML), each
registering its routes and its error shape (``server.front``)."""

from litegate.server.app import create_app

__all__ = ["create_app"]
