"""Chat requests: their shapes and checks (``request``), structured output (``structured``),
function calling (``tools``), and the one service every front end calls (``service``).

The names below load on first use, so a module that needs only ``chat.structured`` (the task
registry the CLI builds its commands from) does not import the service and every tier with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litegate.chat.request import (
        ChatCompletionRequest,
        ChatMessage,
        CompletionRequest,
        PreparedChat,
        prepare_chat,
    )
    from litegate.chat.service import ChatCall, ChatRun, ChatService

_WHERE = {"ChatCompletionRequest": "request", "ChatMessage": "request", "CompletionRequest": "request",
          "PreparedChat": "request", "prepare_chat": "request",
          "ChatCall": "service", "ChatRun": "service", "ChatService": "service"}

__all__ = ["ChatCall", "ChatCompletionRequest", "ChatMessage", "ChatRun", "ChatService", "CompletionRequest",
           "PreparedChat", "prepare_chat"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'litegate.chat' has no attribute {name!r}")
    return getattr(importlib.import_module(f"litegate.chat.{_WHERE[name]}"), name)
