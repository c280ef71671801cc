"""The compute budget: how many CPUs this process may use (affinity and a container's CPU
quota, not the machine's core count), and how they are split across the engines that share
it — llama.cpp, onnxruntime (OCR), BLAS (the encoder) and CTranslate2 (speech).

A leaf module (standard library only): ``litegate.config`` takes its default from here.

Why the split looks the way it does (bench/contention.py, docs/performance.md):
- llama.cpp's threads meet at a spinning barrier after every operation of every token; when
  one of them is descheduled the others spin until it returns, so a pool wider than the CPUs
  actually free convoys instead of slowing down by its share. Measured on 2 cores shared with
  other work (load 25-30, bench/contention.py): 2 llama.cpp threads decoded 0.2-0.3 tok/s, one
  thread 3.1-3.4 tok/s. So decode gets the budget less one CPU (at least one thread): the rest
  of the process (HTTP, tokenizing, the encoder, documents) and the neighbours then preempt
  nothing that others wait on. On a quiet machine with spare cores, raise LITEGATE_LLAMA_THREADS.
- Document work (OCR, speech, PDF rendering) gets the rest of the budget (at least one thread)
  on a bounded pool of its own, so decode and reading files never hold more threads than the
  budget between them and reading a file cannot take a token stream's CPU. A lower CPU priority
  for the workers (``document_nice``) is available but off: on a machine shared with other
  processes it hands the documents' share to the neighbours, not to decode (nice +10 at load 29:
  278 s for one OCR'd page that takes 1.3 s quiet).
- The encoder's matrix products are small (a few sentences at a time): half the budget.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")
# llama.cpp's idle-wait between two computations: 0 sleeps at once, 100 spins longest (its own
# default is 50). Under contention it made no measurable difference to decode (2 threads, load
# 25-30: 0.2-0.3 tok/s at poll 0 and at 50; bench/README.md, "Under contention"), while a
# spinning idle pool takes CPU from neighbours: 0.
DEFAULT_POLL = 0
DOCUMENT_NICE = 0  # how much lower document workers run than request threads (Linux nice steps); see above


def affinity_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _own_cgroup(root: Path, membership: Path) -> tuple[Path | None, Path | None]:
    """(cgroup v2 directory, cgroup v1 cpu directory) of this process, where they exist."""
    v2 = v1 = None
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and not controllers:
            v2 = root / path.lstrip("/")
        elif "cpu" in controllers.split(","):
            v1 = root / controllers / path.lstrip("/")
            if not v1.is_dir():
                v1 = root / "cpu" / path.lstrip("/")
    return v2, v1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_quota(root: Path = CGROUP_ROOT, membership: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``cpu.max`` in v2, ``cfs_quota_us`` /
    ``cfs_period_us`` in v1), the tightest along the path up to the root; None: unlimited."""
    v2, v1 = _own_cgroup(root, membership)
    candidates: list[float] = []
    directory = v2
    while directory is not None:  # every level's limit applies; a container sees its own as the root
        value = _read(directory / "cpu.max")
        if value:
            quota, _, period = value.partition(" ")
            if quota.isdigit() and period.isdigit() and int(period) > 0:
                candidates.append(int(quota) / int(period))
        directory = directory.parent if root in directory.parents else None
    for directory in (v1, root / "cpu", root / "cpu,cpuacct"):
        if directory is None:
            continue
        q, p = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
        if q and p and q.lstrip("-").isdigit() and int(q) > 0 and int(p) > 0:
            candidates.append(int(q) / int(p))
    return min(candidates) if candidates else None


def available_cpus() -> int:
    """The CPUs this process may use: its affinity, capped by the cgroup quota (rounded down,
    at least 1: a thread pool sized to a fractional quota would be throttled mid-token)."""
    cpus = affinity_cpus()
    quota = cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return cpus


@dataclass(frozen=True)
class ComputeBudget:
    """Threads per engine from one budget of ``cpus``."""

    cpus: int  # the budget (LITEGATE_THREADS, default available_cpus())
    llama_threads: int  # per model: decode and prompt processing (default: the budget less one CPU)
    llama_poll: int  # llama.cpp's busy-wait level between computations (0-100)
    ocr_threads: int  # onnxruntime intra-op threads (inter-op: 1, the models run sequentially)
    speech_threads: int  # CTranslate2 threads
    blas_threads: int  # BLAS threads for the NumPy encoder
    document_workers: int  # documents read at once
    document_queue: int  # documents that may wait for a worker; beyond that 503 + Retry-After
    document_nice: int  # document workers' CPU priority below request threads

    @classmethod
    def split(cls, cpus: int, *, poll: int = DEFAULT_POLL, llama_threads: int = 0, document_workers: int = 1,
              document_queue: int = 8, document_nice: int = DOCUMENT_NICE) -> ComputeBudget:
        """The default split of ``cpus``; ``llama_threads`` > 0 overrides the decode share."""
        cpus = max(1, int(cpus))
        decode = llama_threads if llama_threads > 0 else max(1, cpus - 1)
        documents = max(1, cpus - decode)
        return cls(cpus=cpus, llama_threads=decode, llama_poll=poll,
                   ocr_threads=documents, speech_threads=documents, blas_threads=max(1, cpus // 2),
                   document_workers=max(1, document_workers), document_queue=max(0, document_queue),
                   document_nice=document_nice)

    @classmethod
    def from_settings(cls, settings: Any) -> ComputeBudget:
        """The budget a ``litegate.config.Settings`` describes."""
        return cls.split(settings.threads, poll=settings.poll, llama_threads=settings.llama_threads,
                         document_workers=settings.document_workers, document_queue=settings.document_queue,
                         document_nice=settings.document_nice)

    def apply_blas(self) -> dict[str, Any]:
        """Limit the BLAS library behind NumPy (OpenBLAS, MKL) to ``blas_threads``, for the
        whole process; returns what threadpoolctl found, for ``litegate doctor``. NumPy is
        imported first: threadpoolctl finds only the libraries already loaded."""
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(limits=self.blas_threads, user_api="blas")
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        return {"libraries": [p.get("internal_api") for p in pools],
                "threads": [p.get("num_threads") for p in pools]}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lower_thread_priority(nice: int) -> bool:
    """Lower the calling thread's CPU priority by ``nice`` steps (Linux: nice is per thread;
    threads it starts later inherit it). False where that is not possible."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        return True
    except OSError:
        return False


# ---- what `litegate doctor` reports -----------------------------------------------------------

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


def survey(budget: ComputeBudget) -> dict[str, Any]:
    """CPUs seen, affinity, quota, the budget's threads per engine and the load now."""
    quota = cgroup_quota()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpus_online": os.cpu_count() or 1, "affinity_cpus": affinity_cpus(),
            "cgroup_quota_cpus": round(quota, 2) if quota is not None else None,
            "available_cpus": available_cpus(), "budget": budget.as_dict(),
            "load_average": [round(x, 2) for x in load], "load_per_cpu": round(load[0] / (os.cpu_count() or 1), 2),
            "thread_env": {k: os.environ[k] for k in THREAD_ENV if k in os.environ}}


def advice(report: dict[str, Any]) -> list[str]:
    """What to change, from a survey plus probes (``decode`` / ``encoder`` with a ``ratio`` of
    the speed measured to the quiet speed expected)."""
    tips: list[str] = []
    budget = report["budget"]
    if budget["cpus"] > report["available_cpus"]:
        tips.append(f"LITEGATE_THREADS={budget['cpus']} is more than the {report['available_cpus']} CPUs this process "
                    f"may use (affinity and quota): set it to {report['available_cpus']} or unset it")
    if budget["llama_threads"] > report["available_cpus"]:
        tips.append(f"llama.cpp has {budget['llama_threads']} threads for {report['available_cpus']} usable CPUs: its "
                    "threads wait on each other at every step when one is descheduled; lower LITEGATE_LLAMA_THREADS")
    busy = report["load_average"][0] - report["cpus_online"]
    decode = (report.get("decode") or {}).get("ratio")
    if busy > 0 and budget["llama_threads"] > 1:
        fewer = max(1, budget["llama_threads"] // 2)
        tips.append(f"the machine is oversubscribed (load {report['load_average'][0]:g} on "
                    f"{report['cpus_online']} CPUs): if decode is slow, try LITEGATE_LLAMA_THREADS={fewer}: on a busy "
                    "machine fewer llama.cpp threads lose less to descheduled ones (docs/performance.md)")
    if budget["llama_poll"] > 0 and busy > 0:
        tips.append(f"LITEGATE_POLL={budget['llama_poll']} makes idle llama.cpp threads spin, taking CPU from "
                    "neighbours on a busy machine; 0 is the default")
    if decode is not None and decode < 0.5 and busy > 0:
        fewer = " or fewer llama.cpp threads" if budget["llama_threads"] > 1 else ""
        tips.append(f"decode runs at {decode:.0%} of its quiet speed: other work holds the CPUs (see the load); give "
                    f"litegate its own CPUs (taskset / cpuset / a container's cpus){fewer}")
    elif decode is not None and decode < 0.5:
        tips.append(f"decode runs at {decode:.0%} of its quiet speed on a machine that is not oversubscribed: check "
                    "the CPU's frequency scaling and power mode, and whether a container throttles this process")
    encoder = (report.get("encoder") or {}).get("ratio")
    if encoder is not None and encoder < 0.5:
        tips.append(f"the encoder runs at {encoder:.0%} of its quiet speed: check the load and "
                    "OPENBLAS_NUM_THREADS / OMP_NUM_THREADS")
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        value = report["thread_env"].get(key)
        if value and value.isdigit() and int(value) > report["available_cpus"]:
            tips.append(f"{key}={value} is above the {report['available_cpus']} usable CPUs; unset it (litegate sizes "
                        "BLAS threads from its budget)")
    return tips or ["nothing to change: the budget fits the CPUs this process may use"]
