"""A minimal OpenAI Responses API (``POST /v1/responses``), in OpenAI's error shape."""

from litegate.server.front import FrontEnd, routers
from litegate.server.responses import routes

FRONT = FrontEnd("responses", routers(routes.router))
