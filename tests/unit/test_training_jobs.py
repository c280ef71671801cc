"""Background training jobs (jobs/training.py) on the real classifier store with the fake
encoder: a job trains and says so, is its owner's only, is refused before it is queued when the
request is bad, and a job a crash left unfinished is trained again when the next process starts
— twice at most."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeEncoder

from litegate.errors import InvalidRequest, NotFound
from litegate.jobs.training import MAX_ATTEMPTS, TrainingJobs
from litegate.nano.classifier import ClassifierStore
from litegate.nano.encoders import EncoderRegistry
from litegate.tenancy import OPERATOR, Tenant

pytestmark = pytest.mark.unit
INTENTS = [{"text": t, "label": "weather"} for t in ("will it rain today", "is it sunny outside", "cold tomorrow?")] + \
          [{"text": t, "label": "music"} for t in ("play some jazz", "put on a song", "next track please")]
A, B = Tenant("key-a"), Tenant("key-b")


def jobs_in(home: Path) -> TrainingJobs:
    return TrainingJobs(home, ClassifierStore(home, EncoderRegistry(home, factory=FakeEncoder)))


def test_a_job_trains_in_the_background_and_is_its_owners(tmp_path: Path) -> None:
    jobs = jobs_in(tmp_path)
    job = jobs.submit(A, "intents", INTENTS)
    assert job["status"] in ("queued", "in_progress", "succeeded") and "request" not in job
    jobs.wait(30)
    done = jobs.get(A, job["id"])
    assert done["status"] == "succeeded" and done["classifier"]["labels"] == ["music", "weather"], done
    assert done["progress"] is None and done["error"] is None
    with pytest.raises(NotFound):  # another key's job is not found, like a missing one
        jobs.get(B, job["id"])
    assert jobs.get(OPERATOR, job["id"])["status"] == "succeeded"  # the operator sees every key's
    with pytest.raises(NotFound):
        jobs.get(A, "ctj_" + "0" * 24)
    jobs.close()


def test_a_bad_request_is_refused_before_a_job_is_queued(tmp_path: Path) -> None:
    jobs = jobs_in(tmp_path)
    with pytest.raises(InvalidRequest, match="two labels"):
        jobs.submit(A, "intents", INTENTS[:3])
    with pytest.raises(InvalidRequest) as e:
        jobs.submit(A, "intents", INTENTS, encoder="fast", tune={"layers": 6})  # fast has 6 layers: 1-5
    assert e.value.param == "tune.layers"
    assert not (tmp_path / "training_jobs").exists() or not list((tmp_path / "training_jobs").iterdir())


def test_a_job_a_crash_left_unfinished_is_trained_again_twice_at_most(tmp_path: Path) -> None:
    first = jobs_in(tmp_path)
    job = first.submit(A, "intents", INTENTS)
    first.wait(30)
    first.close()
    path = tmp_path / "training_jobs" / f"{job['id']}.json"
    crashed = json.loads(path.read_text()) | {"status": "in_progress", "classifier": None}
    path.write_text(json.dumps(crashed))  # what a process killed while it trained leaves on disk
    second = jobs_in(tmp_path)
    assert second.resume() == [job["id"]]
    second.wait(30)
    again = second.get(A, job["id"])
    assert again["status"] == "succeeded" and again["classifier"]["version"] == 2, again
    second.close()
    path.write_text(json.dumps(crashed | {"attempts": MAX_ATTEMPTS}))  # it stopped the process every time
    third = jobs_in(tmp_path)
    third.resume()
    third.wait(30)
    failed = third.get(A, job["id"])
    assert failed["status"] == "failed" and "stopped the server" in failed["error"]["message"], failed
    assert third.resume() == []  # a finished job is not queued again
    third.close()
