"""The pipeline step ``index`` on the fake runtime: a run's text goes into a collection
(created on first use) with attributes from the run; a later search finds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import runtime

from litegate.errors import ConfigError
from litegate.pipelines import PipelineService, RunInput, load_pipeline

PIPELINE = """
name = "intake"
[[step]]
name = "keep"
kind = "index"
collection = "intake-docs"
attributes = { source = "{{ input.metadata.source }}", year = 2026 }
"""


def test_index_step_adds_the_run_to_a_collection(tmp_path: Path) -> None:
    path = tmp_path / "intake.toml"
    path.write_text(PIPELINE)
    rt = runtime(tmp_path / "home")
    svc = PipelineService(rt, {"intake": load_pipeline(path)}, poll_s=0.05)
    try:
        run = svc.run("intake", RunInput(text="Invoice from Kestrel Supply, total 1,234.50 due in 30 days.",
                                         metadata={"source": "mailroom"}))
        assert run["status"] == "succeeded", run
        out = run["steps"][0]["output"]
        assert out["collection"] == "intake-docs" and out["chunks"] == 1
        hits = rt.collections.search(None, "intake-docs", "Kestrel invoice", filters={"source": "mailroom"})
        assert "Kestrel Supply" in hits[0].text and hits[0].attributes["year"] == 2026
    finally:
        svc.close()
        rt.close()


def test_index_step_needs_a_collection(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[[step]]\nname = "keep"\nkind = "index"\n')
    with pytest.raises(ConfigError, match="collection: is required"):
        load_pipeline(path)
