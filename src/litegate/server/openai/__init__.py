"""OpenAI-compatible routes: chat and text completions, the model list, Files and Batch APIs.
OpenAI's error shape is the app's default, so this API registers none of its own."""

from litegate.server.front import FrontEnd, routers
from litegate.server.openai import batches, chat

FRONT = FrontEnd("openai", routers(chat.router, batches.router))
