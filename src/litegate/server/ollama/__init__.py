"""Ollama-compatible routes under /api; errors in Ollama's shape."""
