"""Cross-lingual query generation (xQG): prompts, generator backends, resumable runs, quality checks."""
