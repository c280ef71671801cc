"""litegate's own API: tasks (``/v1/tasks/{task}``), classifiers and extractors, learning and
the review queue, pipelines. Errors in OpenAI's shape."""

from litegate.server.front import FrontEnd, routers
from litegate.server.native import learning, pipelines, tasks

FRONT = FrontEnd("litegate", routers(tasks.router, learning.router, pipelines.router))
