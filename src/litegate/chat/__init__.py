"""Chat requests: their shapes and checks (``request``), structured output (``structured``),
function calling (``tools``), and the one service every front end calls (``service``)."""

from litegate.chat.request import ChatCompletionRequest, ChatMessage, CompletionRequest, PreparedChat, prepare_chat
from litegate.chat.service import ChatCall, ChatRun, ChatService

__all__ = ["ChatCall", "ChatCompletionRequest", "ChatMessage", "ChatRun", "ChatService", "CompletionRequest",
           "PreparedChat", "prepare_chat"]
