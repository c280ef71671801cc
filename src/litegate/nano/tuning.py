"""Contrastive tuning of a nano encoder's top layers on a classifier's examples (SetFit-style),
with PyTorch at training time only (the ``tune`` extra); nano.tuned serves the result.

Cheap on a small CPU: the lower layers stay frozen and their word-piece vectors are computed
once, so every step runs only the top ``layers`` layers, forward and backward. Batches hold a
few examples of each of several labels; the loss pulls a label's sentence vectors together and
pushes other labels' apart (supervised contrastive, or SetFit's cosine pairs). The tuned layers
leave as NumPy arrays in 8 bits, exactly what the version stores and serves.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from litegate.errors import InvalidRequest
from litegate.nano.encoder import TransformerEncoder
from litegate.nano.tuned import MATRICES, TunedLayers, frozen_states, innermost, to_8bit

EXTRA_HINT = "pip install 'litegate[tune]' (PyTorch's CPU build, about 190 MB; needed to train only)"
LOSSES = ("pairs", "supcon")
# the encoder kinds whose layers run here (TransformerEncoder), with their layer counts: the others cannot tune
TUNABLE = {"fast": 6, "accurate": 12}


@dataclass(frozen=True)
class TuneSettings:
    """How to tune: the defaults are what bench/nano.py measured best on CLINC150's validation split."""

    layers: int = 2  # the top layers tuned (the rest stay frozen)
    epochs: int = 3
    loss: str = "pairs"  # pairs (cosine pairs, as SetFit) or supcon (supervised contrastive)
    learning_rate: float = 5e-5
    temperature: float = 0.1  # supcon's
    labels_per_batch: int = 16
    per_label: int = 4  # examples of each label in a batch
    seed: int = 0
    threads: int = 2

    @classmethod
    def from_request(cls, value: Any) -> TuneSettings | None:
        """``tune`` as a request gives it: false/None (no tuning), true (the defaults) or an
        object of the fields above."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if not isinstance(value, dict):
            raise InvalidRequest("'tune' must be true, false or an object such as {\"layers\": 2, \"epochs\": 3}",
                                 param="tune")
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(value) - known)
        if extra:
            raise InvalidRequest(f"'tune.{extra[0]}' is not a tuning setting; settings: {', '.join(sorted(known))}",
                                 param=f"tune.{extra[0]}")
        settings = cls(**value)
        settings.check()
        return settings

    def check(self, total_layers: int | None = None) -> None:
        limits = {"layers": (1, (total_layers or 12) - 1), "epochs": (1, 50), "labels_per_batch": (2, 256),
                  "per_label": (2, 64), "threads": (1, 64), "seed": (0, 2**31 - 1)}
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise InvalidRequest(f"'tune.{name}' must be a whole number from {lo} to {hi}", param=f"tune.{name}")
        for name in ("learning_rate", "temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise InvalidRequest(f"'tune.{name}' must be a number in (0, 1]", param=f"tune.{name}")
        if self.loss not in LOSSES:
            raise InvalidRequest(f"'tune.loss' must be one of {', '.join(LOSSES)}", param="tune.loss")


def check_tunable(key: str, settings: TuneSettings | None = None) -> None:
    """That ``key``'s encoder can be tuned, with ``settings`` (before the encoder loads)."""
    if key not in TUNABLE:
        raise InvalidRequest(f"the {key} encoder cannot be tuned (it runs in its own engine); tune "
                             f"{' or '.join(TUNABLE)}", param="tune")
    if settings is not None:
        settings.check(TUNABLE[key])


def require_torch() -> Any:
    """PyTorch, or a one-line error naming the extra that installs it."""
    try:
        import torch
    except ImportError:
        raise InvalidRequest(f"tuning the encoder needs PyTorch at training time: {EXTRA_HINT}",
                             param="tune") from None
    return torch


def tunable(encoder: Any, key: str) -> TransformerEncoder:
    """The encoder itself when its layers can be tuned, else a clear error."""
    encoder = innermost(encoder)
    if not isinstance(encoder, TransformerEncoder):
        raise InvalidRequest(f"the {key} encoder ({getattr(encoder, 'name', type(encoder).__name__)}) cannot be "
                             "tuned: its layers do not run here", param="tune")
    return encoder


def tune(encoder: TransformerEncoder, texts: list[str], labels: list[str], settings: TuneSettings,
         progress: Any = None, states: list[np.ndarray] | None = None) -> TunedLayers:
    """The top ``settings.layers`` layers of ``encoder`` tuned on the examples, in 8 bits.
    ``states``: the texts' ``frozen_states`` below those layers, when already computed."""
    torch = require_torch()
    settings.check(encoder.layers)
    started = time.perf_counter()
    frozen = encoder.layers - settings.layers
    states = states if states is not None else frozen_states(encoder, texts, frozen)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        torch.manual_seed(settings.seed)
        model = _TopLayers(torch, encoder, encoder._layers[frozen:])
        losses = _train(torch, model, encoder, states, labels, settings, progress)
    finally:
        torch.set_num_threads(previous_threads)
    layers = [tuple(to_8bit(v) if j in MATRICES else v for j, v in enumerate(layer)) for layer in model.export()]
    done = {**asdict(settings), "examples": len(texts), "seconds": round(time.perf_counter() - started, 1),
            "loss_first_epoch": losses[0], "loss_last_epoch": losses[-1]}
    return TunedLayers(encoder.name, encoder.layers, layers, done)


def _batches(labels: list[str], settings: TuneSettings, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch: batches of ``per_label`` examples of ``labels_per_batch`` labels, each
    example about once per epoch."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    queues = {label: list(rng.permutation(idx)) for label, idx in by_label.items()}
    steps = max(1, -(-len(labels) // (settings.labels_per_batch * settings.per_label)))
    out = []
    for _ in range(steps):
        live = [label for label in queues if len(by_label[label]) >= 2]
        chosen = rng.permutation(len(live))[:settings.labels_per_batch]
        batch = []
        for c in chosen:
            label = live[int(c)]
            queue = queues[label]
            if len(queue) < settings.per_label:  # refill: a label seen again before others run out
                queue.extend(rng.permutation(by_label[label]).tolist())
            take = min(settings.per_label, len(by_label[label]))
            batch += [queue.pop(0) for _ in range(take)]
        out.append(np.array(batch))
    return out


def _train(torch: Any, model: Any, encoder: TransformerEncoder, states: list[np.ndarray], labels: list[str],
           settings: TuneSettings, progress: Any) -> list[float]:
    rng = np.random.default_rng(settings.seed)
    classes = {label: k for k, label in enumerate(sorted(set(labels)))}
    target = np.array([classes[label] for label in labels])
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    epoch_losses = []
    for epoch in range(settings.epochs):
        batches = _batches(labels, settings, rng)
        total = 0.0
        for step, batch in enumerate(batches):
            x, mask = _padded(states, batch, encoder.dim)
            bias = torch.from_numpy(np.ascontiguousarray(encoder._attention_bias(mask), np.float32))
            vectors = model(torch.from_numpy(x), bias, torch.from_numpy(mask))
            y = torch.from_numpy(target[batch])
            loss = _supcon(torch, vectors, y, settings.temperature) if settings.loss == "supcon" \
                else _pairs(torch, vectors, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            if progress is not None:
                progress(f"tuning: epoch {epoch + 1}/{settings.epochs}, step {step + 1}/{len(batches)}")
        epoch_losses.append(round(total / len(batches), 4))
    return epoch_losses


def _padded(states: list[np.ndarray], batch: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    t = max(len(states[i]) for i in batch)
    x = np.zeros((len(batch), t, dim), np.float32)
    mask = np.zeros((len(batch), t), np.float32)
    for row, i in enumerate(batch):
        x[row, :len(states[i])] = states[i]
        mask[row, :len(states[i])] = 1.0
    return x, mask


def _supcon(torch: Any, z: Any, y: Any, temperature: float) -> Any:
    """Supervised contrastive loss (Khosla et al. 2020) over unit vectors ``z``."""
    n = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool)
    logits = logits.masked_fill(self_mask, -1e9)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (y[:, None] == y[None, :]) & ~self_mask
    counts = positive.sum(1)
    has = counts > 0
    mean_log_prob = (log_prob * positive).sum(1)[has] / counts[has]
    return -mean_log_prob.mean()


def _pairs(torch: Any, z: Any, y: Any) -> Any:
    """SetFit's cosine-similarity loss: (cos - 1)^2 for same-label pairs, cos^2 for others,
    the two kinds weighted equally."""
    n = z.shape[0]
    cos = z @ z.T
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    same = (y[:, None] == y[None, :]) & upper
    other = ~(y[:, None] == y[None, :]) & upper
    loss = ((cos - 1) ** 2)[same].mean() if bool(same.any()) else cos.sum() * 0
    return loss + ((cos ** 2)[other].mean() if bool(other.any()) else 0)


class _TopLayers:
    """The tuned layers as torch parameters (post-layer-norm BERT blocks, mean pooling, unit vectors)."""

    def __init__(self, torch: Any, encoder: TransformerEncoder, layers: list[tuple[np.ndarray, ...]]):
        self.torch = torch
        self.dim, self.heads, self.eps = encoder.dim, encoder.heads, encoder.eps
        self.params = [[torch.nn.Parameter(torch.from_numpy(np.array(w, np.float32))) for w in layer]
                       for layer in layers]

    def parameters(self) -> list[Any]:
        return [p for layer in self.params for p in layer]

    def __call__(self, x: Any, bias: Any, mask: Any) -> Any:
        f = self.torch.nn.functional
        n, t, dim = x.shape
        hd = dim // self.heads
        for (qkv_w, qkv_b, o_w, o_b, ln1_w, ln1_b, i_w, i_b, f_w, f_b, ln2_w, ln2_b) in self.params:
            q, k, v = (part.reshape(n, t, self.heads, hd).transpose(1, 2)
                       for part in (x @ qkv_w + qkv_b).split(dim, dim=-1))
            probs = f.softmax(q @ k.transpose(-1, -2) / hd ** 0.5 + bias, dim=-1)
            ctx = (probs @ v).transpose(1, 2).reshape(n, t, dim)
            x = f.layer_norm(x + ctx @ o_w + o_b, (dim,), ln1_w, ln1_b, self.eps)
            x = f.layer_norm(x + f.gelu(x @ i_w + i_b) @ f_w + f_b, (dim,), ln2_w, ln2_b, self.eps)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
        return f.normalize(pooled, dim=-1)

    def export(self) -> list[tuple[np.ndarray, ...]]:
        return [tuple(p.detach().numpy().astype(np.float32).copy() for p in layer) for layer in self.params]
