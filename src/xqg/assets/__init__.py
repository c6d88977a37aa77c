"""Files shipped inside the package (trained adapters), loaded by path via importlib.resources."""
