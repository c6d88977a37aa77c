"""Learning: the query generator, the retriever, and cross-lingual distillation."""
