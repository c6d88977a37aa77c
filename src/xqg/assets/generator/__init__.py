"""The trained question-generator LoRA adapter(s); see docs/generator-training.md to reproduce."""
