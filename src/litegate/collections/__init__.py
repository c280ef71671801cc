"""Collections: the user's documents, chunked with provenance, searched by BM25 and dense
vectors fused, and the ground the ``answer`` task cites.

    Collections(engine, encoder).create(owner, name) / list / get / delete
    .add_file(owner, name, Part) / .add_text(owner, name, text, attributes=...)
    .search(owner, name, query, top_k=10, filters=..., mode="hybrid", rerank=tier) -> [Hit]
"""

from litegate.collections.chunking import Chunk, chunk_document
from litegate.collections.service import Collections, Hit

__all__ = ["Chunk", "Collections", "Hit", "chunk_document"]
