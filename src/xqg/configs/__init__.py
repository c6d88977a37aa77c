"""Packaged experiment files (the demo\x27s settings)."""
