"""The nano tier's models: the sentence encoder, trained classifiers and extractors, their
versioned store on disk, embeddings for every front end, and the coalescing of concurrent calls."""
