"""`litegate doctor` as a user runs it: the real model and encoder probed, text and --json."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import litegate_cmd


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(litegate_cmd("doctor", *args), env=dict(os.environ, LITEGATE_HOME=str(home), **env),
                          capture_output=True, text=True, timeout=900)


def test_doctor_json_probes_decode_and_the_encoder(home: Path) -> None:
    r = run(home, "--json", "--seconds", "1", LITEGATE_THREADS="1")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["available_cpus"] >= 1 and report["affinity_cpus"] == len(os.sched_getaffinity(0))
    assert report["budget"]["cpus"] == 1 and report["budget"]["llama_threads"] == 1
    assert report["decode"]["tokens"] > 1 and report["decode"]["tok_s"] > 0
    assert report["decode"]["expected_tok_s"] > 0 and report["decode"]["ratio"] > 0
    assert report["encoder"]["sentences_s"] > 0 and report["encoder"]["expected_sentences_s"] > 0
    assert report["blas"]["threads"] and set(report["blas"]["threads"]) == {1}
    assert report["advice"] and len(report["load_average"]) == 3


def test_doctor_text_names_every_engine_and_what_to_change(home: Path) -> None:
    r = run(home, "--no-probe", LITEGATE_THREADS="64")
    assert r.returncode == 0, r.stderr
    for words in ("usable", "llama.cpp: 63 threads", "OCR", "speech", "encoder", "load:", "what to change"):
        assert words in r.stdout, r.stdout
    assert "LITEGATE_THREADS=64 is more than" in r.stdout  # more threads than the process may use


def test_doctor_rejects_a_bad_probe_length(home: Path) -> None:
    r = run(home, "--seconds", "0")
    assert r.returncode == 1 and r.stderr.strip().startswith("error:") and "--seconds" in r.stderr
