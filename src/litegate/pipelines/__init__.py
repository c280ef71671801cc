"""Document-intake pipelines: a TOML file of named steps (ingest, extract, classify, route,
summarize, translate, answer, review, write, notify) run over each document, every step
costed through the same task runner and ledger as ``/v1/tasks``, every run a record.

- ``config``: where pipeline files are, how they are read and checked (one-line errors)
- ``expr``: the safe expression language of ``when`` conditions and column values
- ``steps``: ``STEP_KINDS``, one check and one run function per kind
- ``store``: the ``pipeline_runs``, ``pipeline_steps`` and ``pipeline_deliveries`` tables
- ``sinks``: SQL tables and JSONL files that ``write`` steps fill, once per run
- ``notify``: the webhook outbox (signed, retried with backoff, dead-lettered)
- ``runner``: ``PipelineService``: submit, execute, resume, review, stats
"""

from litegate.pipelines.config import Pipeline, load_pipeline, load_pipelines, parse_pipeline
from litegate.pipelines.runner import PipelineService, RunInput
from litegate.pipelines.spec import StepConfig
from litegate.pipelines.steps import STEP_KINDS

__all__ = ["STEP_KINDS", "Pipeline", "PipelineService", "RunInput", "StepConfig", "load_pipeline", "load_pipelines",
           "parse_pipeline"]
