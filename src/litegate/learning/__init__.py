"""Learning from review and from stronger tiers: the examples store, the review queue, and
distillation of nano classifiers and extractors."""
