"""litegate's own API: tasks (``/v1/tasks/{task}``), classifiers and extractors, learning and
the review queue, pipelines, collections. Errors in OpenAI's shape."""

from litegate.server.front import FrontEnd, OperatorOnly, routers
from litegate.server.native import collections, learning, pipelines, tasks

FRONT = FrontEnd("litegate", routers(tasks.router, OperatorOnly(learning.router), pipelines.router, collections.router))
