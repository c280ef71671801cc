"""OpenAI-compatible routes: chat and text completions, the model list, Files, Batch and vector store APIs.
OpenAI's error shape is the app's default, so this API registers none of its own."""

from litegate.server.front import FrontEnd, routers
from litegate.server.openai import batches, chat, vector_stores

FRONT = FrontEnd("openai", routers(chat.router, batches.router, vector_stores.router))
