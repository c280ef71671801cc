"""litegate: a self-hosted lite tier for LLM automation.

``from litegate import Litegate`` loads the runtime; ``from litegate._version import __version__`` and
the error classes load nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litegate._version import __version__
from litegate.errors import ContextLengthExceeded, InvalidRequest, LitegateError, ModelNotFound, OutputTruncated

if TYPE_CHECKING:
    from litegate.api import Litegate


def __getattr__(name: str) -> Any:
    if name == "Litegate":  # the Python API pulls in the engine and every store: only when asked for
        from litegate.api import Litegate

        return Litegate
    raise AttributeError(f"module 'litegate' has no attribute {name!r}")


__all__ = ["Litegate", "LitegateError", "InvalidRequest", "ContextLengthExceeded", "ModelNotFound",
           "OutputTruncated", "__version__"]
