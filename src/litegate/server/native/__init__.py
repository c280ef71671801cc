"""litegate's own API: tasks (``/v1/tasks/{task}``), classifiers and extractors, learning and the
review queue, pipelines."""
