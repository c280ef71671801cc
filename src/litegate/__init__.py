"""litegate: a self-hosted lite tier for LLM automation."""

__version__ = "0.1.0"
