"""The composition root: ``build(settings, config) -> Runtime``.

Everything a litegate process owns is made here, once, and nowhere else: the model registry,
the tiers (from the config, or the defaults), the ledger's accountant, the cascade policies,
the chat service and the task runner. ``litegate serve``, the CLI task commands, the Python
API and the tests all start from ``build``; state lives in the Runtime, never in module
globals, so two can exist side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litegate.compute import ComputeBudget
from litegate.config import Settings
from litegate.configfile import Config, load_config
from litegate.tiers import TIER_KINDS, BaseTier, TierConfig, check_names, make_tier


@dataclass
class TierDeps:
    """What tier kinds may use: the local model registry and the nano classifiers."""

    registry: Any
    classifiers: Any
    settings: Settings
    extractors: Any = None


def default_tiers(lite_model: str, pro_installed: bool) -> list[TierConfig]:
    """No config: nano (when a classifier is named) -> lite -> pro (when installed)."""
    tiers = [TierConfig("nano", "nano"), TierConfig("lite", "local", model=lite_model)]
    if pro_installed:
        tiers.append(TierConfig("pro", "local", model="pro"))
    return tiers


def check_mmproj(path: Path) -> Path:
    """A projector file the user brings: it must exist and be a GGUF."""
    from litegate.errors import ConfigError

    path = Path(path).expanduser()
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ConfigError(f"--mmproj {path}: {e.strerror}") from None
    if magic != b"GGUF":
        raise ConfigError(f"--mmproj {path} is not a GGUF file (a multimodal projector, e.g. mmproj-*.gguf)")
    return path


def served_name(spec: str) -> str:
    """The name a model is served under: an embedded name, or a GGUF file's name."""
    from litegate.engine.catalog import CATALOG

    return spec if spec in CATALOG else Path(spec).expanduser().name


@dataclass
class Runtime:
    settings: Settings
    config: Config
    registry: Any
    classifiers: Any
    extractors: Any
    tiers: dict[str, BaseTier]
    order: list[str]  # the default cascade order
    accountant: Any
    policies: Any
    chat: Any
    tasks: Any
    embeddings: Any
    default_model: str
    learner: Any = None
    files: Any = None  # litegate.jobs.files.FileStore
    batches: Any = None  # litegate.jobs.batches.BatchStore
    compute: Any = None  # litegate.compute.ComputeBudget: threads per engine
    documents: Any = None  # litegate.documents.pool.DocumentPool: where files are read

    def close(self) -> None:
        if self.learner is not None:
            self.learner.wait_background()
        if self.accountant is not None:
            self.accountant.flush()
        for tier in self.tiers.values():
            tier.close()
        self.registry.close()
        if self.documents is not None:
            self.documents.close()

    async def aclose(self) -> None:
        for tier in self.tiers.values():
            await tier.aclose()


def build(settings: Settings | None = None, config: Config | Path | str | None = None, *, model: str = "lite",
          record: bool = True, encoder_factory: Any = None, registry: Any = None, progress: Any = None,
          extra_tiers: list[TierConfig] | None = None) -> Runtime:
    """Make a Runtime. ``model`` is the LLM behind the ``lite`` tier and the chat default;
    ``record=False`` keeps calls out of the ledger (evals); ``registry`` and
    ``encoder_factory`` let tests substitute fakes for the engine and the encoder."""
    from litegate.chat.service import ChatService
    from litegate.learning.loop import Learner
    from litegate.ledger.accounting import Accountant
    from litegate.ledger.calls import Ledger
    from litegate.nano.classifier import ClassifierStore
    from litegate.nano.embeddings import EmbeddingService
    from litegate.nano.extractor import ExtractorStore
    from litegate.tasks import TaskContext, TaskRunner
    from litegate.tasks.cascade import PolicyStore
    from litegate.tasks.runner import Shadowing, accounting_observer

    settings = settings or Settings()
    if not isinstance(config, Config):
        config = load_config(config if config is not None else settings.config)
    if registry is None:
        from litegate.engine import ModelRegistry

        kwargs = {"progress": progress} if progress is not None else {}
        registry = ModelRegistry(settings, extra_specs=[model], **kwargs)
    default_model = registry.lookup(served_name(model)).name
    if settings.mmproj is not None:
        registry.lookup(default_model).mmproj = check_mmproj(settings.mmproj)
    if encoder_factory is None:
        from litegate.nano.encoder import MiniLMEncoder

        encoder_factory = MiniLMEncoder
    classifiers = ClassifierStore(settings.home, encoder_factory)
    extractors = ExtractorStore(settings.home, classifiers)  # one encoder for both

    declared = list(config.tiers) + list(extra_tiers or [])
    if extra_tiers:
        check_names(declared, "extra tiers")
    configs = declared if any(c.cascade for c in declared) else (
        default_tiers(default_model, "pro" in registry.names()) + declared)
    order = [c.name for c in configs if c.cascade]
    by_name = {c.name: c for c in configs}
    # the built-in tiers stay addressable by name
    by_name.setdefault("nano", TierConfig("nano", "nano", cascade=False))
    by_name.setdefault("lite", TierConfig("lite", "local", model=default_model, cascade=False))
    if "pro" in registry.names():
        by_name.setdefault("pro", TierConfig("pro", "local", model="pro", cascade=False))
    deps = TierDeps(registry, classifiers, settings, extractors)
    tiers = {name: make_tier(cfg, deps) for name, cfg in by_name.items() if cfg.kind in TIER_KINDS}

    accountant = Accountant(Ledger(settings.ledger_database_url())) if record else None
    policies = PolicyStore(settings.home)
    from litegate.documents.attachments import Attachments
    from litegate.documents.pool import DocumentPool
    from litegate.jobs.batches import BatchStore
    from litegate.jobs.files import FileStore

    if accountant is not None:
        store_engine = accountant.ledger.engine
    else:  # evals keep calls out of the ledger, not files and batches
        from sqlalchemy import create_engine

        store_engine = create_engine(settings.ledger_database_url())
    files = FileStore(store_engine, settings.home)
    batches = BatchStore(store_engine, files)
    compute = ComputeBudget.from_settings(settings)
    compute.apply_blas()
    documents = DocumentPool.from_budget(compute)
    if accountant is not None:
        accountant.metrics.watch_documents(documents)
    attachments = Attachments(files, fetch_urls=settings.fetch_urls, max_request_mb=settings.max_document_mb,
                              pool=documents)
    chat = ChatService(registry, tiers, accountant, default_model, encoder_source=classifiers, attachments=attachments)
    nano_tier = next((t for t in tiers.values() if "embed" in t.capabilities), None)
    embeddings = EmbeddingService(classifiers, accountant, nano_tier.price if nano_tier is not None else None)
    runner = TaskRunner(tiers, order, TaskContext(classifiers=classifiers, extractors=extractors,
                                                  attachments=attachments), policies=policies)
    learner = None
    if accountant is not None:
        learner = Learner(accountant.ledger.engine, classifiers, extractors, ledger=accountant.ledger,
                          distill_every=settings.distill_every,
                          teacher_min_confidence=settings.teacher_min_confidence)
        runner.observers += [accounting_observer(accountant), learner.observe,
                             Shadowing(runner, accountant, listeners=[learner.shadowed])]
    return Runtime(settings=settings, config=config, registry=registry, classifiers=classifiers, files=files,
                   batches=batches,
                   extractors=extractors, tiers=tiers,
                   order=order, accountant=accountant, policies=policies, chat=chat, tasks=runner,
                   embeddings=embeddings, default_model=default_model, learner=learner, compute=compute,
                   documents=documents)
