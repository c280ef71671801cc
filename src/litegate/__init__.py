"""litegate: a self-hosted lite tier for LLM automation."""

__version__ = "0.1.0"

from litegate.api import Litegate  # noqa: E402
from litegate.errors import (  # noqa: E402
    ContextLengthExceeded,
    InvalidRequest,
    LitegateError,
    ModelNotFound,
    OutputTruncated,
)

__all__ = ["Litegate", "LitegateError", "InvalidRequest", "ContextLengthExceeded", "ModelNotFound",
           "OutputTruncated", "__version__"]
