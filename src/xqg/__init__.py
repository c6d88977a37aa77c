"""xqg: cross-lingual dense retrieval with query-generation augmented passage representations.

The pipeline runs as stages that hand files to each other, each with a manifest:
data → generate → encode → augment → index → search → evaluate → analyse.
"""

__version__ = "0.1.0"
