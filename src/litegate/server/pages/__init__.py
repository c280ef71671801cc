"""HTML pages served by the app, no build step: the dashboard, a learning model's page,
pipelines, the playground, collections."""

from litegate.server.front import FrontEnd, OperatorOnly, routers
from litegate.server.pages import collections, dashboard, learning, pipelines, playground

FRONT = FrontEnd("pages", routers(dashboard.router, OperatorOnly(learning.router), pipelines.router, playground.router,
                                    collections.router))
