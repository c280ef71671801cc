"""Gemini-compatible routes under /v1beta (generate, stream, count tokens, embeddings, caches),
and Gemini's Files API and batch mode; errors in Google's shape."""
