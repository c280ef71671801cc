"""HTML pages served by the app, no build step: the dashboard, a learning model's page,
pipelines."""

from litegate.server.front import FrontEnd, routers
from litegate.server.pages import dashboard, learning, pipelines

FRONT = FrontEnd("pages", routers(dashboard.router, learning.router, pipelines.router))
