"""The composition root: ``build(settings, config) -> Runtime``.

Everything a litegate process owns is made here, once, and nowhere else: the model registry,
the tiers (from the config, or the defaults), the ledger's accountant, the cascade policies,
the chat service and the task runner. ``litegate serve``, the CLI task commands, the Python
API and the tests all start from ``build``; state lives in the Runtime, never in module
globals, so two can exist side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine

from litegate.chat.decision import load_for as load_tool_decision
from litegate.chat.service import ChatService
from litegate.collections import Collections
from litegate.compute import ComputeBudget
from litegate.config import Settings
from litegate.configfile import Config, load_config
from litegate.documents.attachments import Attachments
from litegate.documents.pool import DocumentPool
from litegate.documents.prebuilt.extend import PrebuiltStore
from litegate.engine.catalog import CATALOG, ProgressFactory
from litegate.engine.registry import ModelRegistry
from litegate.errors import ConfigError
from litegate.jobs.batches import BatchStore
from litegate.jobs.files import FileStore
from litegate.jobs.training import TrainingJobs
from litegate.learning.loop import Learner
from litegate.ledger.accounting import Accountant
from litegate.ledger.calls import Ledger
from litegate.nano.classifier import ClassifierStore
from litegate.nano.embeddings import EmbeddingService
from litegate.nano.encoders import EncoderRegistry
from litegate.nano.extractor import ExtractorStore
from litegate.tasks import TaskContext, TaskRunner
from litegate.tasks.cascade import PolicyStore
from litegate.tasks.runner import Shadowing, accounting_observer
from litegate.tiers import TIER_KINDS, BaseTier, Tier, TierConfig, TierDeps, check_names, make_tier


def default_tiers(lite_model: str, pro_installed: bool) -> list[TierConfig]:
    """No config: nano (when a classifier is named) -> lite -> pro (when installed)."""
    tiers = [TierConfig("nano", "nano"), TierConfig("lite", "local", model=lite_model)]
    if pro_installed:
        tiers.append(TierConfig("pro", "local", model="pro"))
    return tiers


def check_mmproj(path: Path) -> Path:
    """A projector file the user brings: it must exist and be a GGUF."""
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
    return spec if spec in CATALOG else Path(spec).expanduser().name


@dataclass
class Runtime:
    settings: Settings
    config: Config
    registry: ModelRegistry
    classifiers: ClassifierStore
    extractors: ExtractorStore
    tiers: dict[str, BaseTier]
    order: list[str]  # the default cascade order
    accountant: Accountant | None  # None: calls stay out of the ledger (evals)
    policies: PolicyStore
    chat: ChatService
    tasks: TaskRunner
    embeddings: EmbeddingService
    default_model: str
    files: FileStore
    batches: BatchStore
    encoders: EncoderRegistry
    collections: Collections
    compute: ComputeBudget  # threads per engine
    documents: DocumentPool  # where files are read
    training: TrainingJobs  # classifiers trained in the background (tuning takes minutes)
    learner: Learner | None = None
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Release everything the runtime made; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self.learner is not None:
            self.learner.wait_background()
        if self.accountant is not None:
            self.accountant.flush()
        self.chat.close()
        for tier in self.tiers.values():
            tier.close()
        self.registry.close()
        if self.documents is not None:
            self.documents.close()

    async def aclose(self) -> None:
        for tier in self.tiers.values():
            await tier.aclose()


def build(settings: Settings | None = None, config: Config | Path | str | None = None, *, model: str = "lite",
          record: bool = True, encoder_factory: Any = None, registry: ModelRegistry | None = None,
          progress: ProgressFactory | None = None, extra_tiers: list[TierConfig] | None = None) -> Runtime:
    """Make a Runtime. ``model`` is the LLM behind the ``lite`` tier and the chat default;
    ``record=False`` keeps calls out of the ledger (evals); ``registry`` and
    ``encoder_factory`` let tests substitute fakes for the engine and the encoder."""
    settings = settings or Settings()
    if not isinstance(config, Config):
        config = load_config(config if config is not None else settings.config)
    if registry is None:
        kwargs = {"progress": progress} if progress is not None else {}
        registry = ModelRegistry(settings, extra_specs=[model], **kwargs)
    default_model = registry.lookup(served_name(model)).name
    if settings.mmproj is not None:
        registry.lookup(default_model).mmproj = check_mmproj(settings.mmproj)
    encoders = EncoderRegistry(settings.model_cache_dir(), factory=encoder_factory)  # each encoder made once
    classifiers = ClassifierStore(settings.home, encoders)
    extractors = ExtractorStore(settings.home, encoders)
    deps = TierDeps(registry, classifiers, settings, extractors, encoders)
    tiers, order = _tiers(config, extra_tiers, registry, default_model, deps)
    accountant = Accountant(Ledger(settings.ledger_database_url())) if record else None
    # evals keep calls out of the ledger, not files and batches
    store_engine: Engine = accountant.ledger.engine if accountant is not None else \
        create_engine(settings.ledger_database_url())
    files = FileStore(store_engine, settings.home)
    compute = ComputeBudget.from_settings(settings)
    compute.apply_blas()
    documents = DocumentPool.from_budget(compute)
    if accountant is not None:
        accountant.metrics.watch_documents(documents)
    attachments = Attachments(files, fetch_urls=settings.fetch_urls, max_request_mb=settings.max_document_mb,
                              pool=documents)
    collections = Collections(store_engine, lambda: encoders.default, files=files)

    def local_tier(served: str) -> Tier:  # a served model no configured tier runs
        return make_tier(TierConfig("local", "local", model=served, cascade=False), deps)

    chat = ChatService(registry, dict(tiers), accountant, default_model, encoders=encoders,
                       attachments=attachments, local_tier=local_tier,
                       tool_decision=load_tool_decision(settings.home, shipped=settings.tool_decision == "learned"))
    nano_tier = next((t for t in tiers.values() if "embed" in t.capabilities), None)
    embeddings = EmbeddingService(encoders, accountant, nano_tier.price if nano_tier is not None else None)
    policies = PolicyStore(settings.home)
    runner = TaskRunner(dict(tiers), order, TaskContext(classifiers=classifiers, extractors=extractors,
                                                        attachments=attachments, collections=collections,
                                                        prebuilts=PrebuiltStore(settings.home)),
                        policies=policies)
    students = frozenset(n for n, t in tiers.items() if {"classifier", "extractor"} & t.capabilities)
    learner = _learner(settings, accountant, classifiers, extractors, runner, students)
    return Runtime(settings=settings, config=config, registry=registry, classifiers=classifiers,
                   extractors=extractors, tiers=tiers, order=order, accountant=accountant, policies=policies,
                   chat=chat, tasks=runner, embeddings=embeddings, default_model=default_model, files=files,
                   batches=BatchStore(store_engine, files), learner=learner, encoders=encoders,
                   collections=collections, compute=compute, documents=documents,
                   training=TrainingJobs(settings.home, classifiers))


def _tiers(config: Config, extra_tiers: list[TierConfig] | None, registry: ModelRegistry, default_model: str,
           deps: TierDeps) -> tuple[dict[str, BaseTier], list[str]]:
    """Every tier by name, and the default cascade order: the config's tiers (the defaults when
    it declares no cascade); the built-in ones stay addressable by name."""
    declared = list(config.tiers) + list(extra_tiers or [])
    if extra_tiers:
        check_names(declared, "extra tiers")
    configs = declared if any(c.cascade for c in declared) else (
        default_tiers(default_model, "pro" in registry.names()) + declared)
    by_name = {c.name: c for c in configs}
    by_name.setdefault("nano", TierConfig("nano", "nano", cascade=False))
    by_name.setdefault("lite", TierConfig("lite", "local", model=default_model, cascade=False))
    if "pro" in registry.names():
        by_name.setdefault("pro", TierConfig("pro", "local", model="pro", cascade=False))
    tiers = {name: make_tier(cfg, deps) for name, cfg in by_name.items() if cfg.kind in TIER_KINDS}
    return tiers, [c.name for c in configs if c.cascade]


def _learner(settings: Settings, accountant: Accountant | None, classifiers: ClassifierStore,
             extractors: ExtractorStore, runner: TaskRunner, students: frozenset[str]) -> Learner | None:
    """The learning loop, fed by the runner's observers (only where calls are ledgered)."""
    if accountant is None:
        return None
    learner = Learner(accountant.ledger.engine, classifiers, extractors, ledger=accountant.ledger,
                      distill_every=settings.distill_every, teacher_min_confidence=settings.teacher_min_confidence,
                      students=students)
    runner.observers += [accounting_observer(accountant), learner.observe,
                         Shadowing(runner, accountant, listeners=[learner.shadowed])]
    return learner
