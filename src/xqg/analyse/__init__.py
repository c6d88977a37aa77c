"""Analyses that answer the research questions around xQG (issue 5).

Each analysis is a module with a Python API over numpy arrays and files, and a ``xqg analyse
<name>`` command (registered in :mod:`xqg.analyse.cli`). Every analysis writes one output folder
through :func:`xqg.analyse.common.write_analysis`: ``analysis.json`` (numbers), ``analysis.md``
(tables + the one-line answer), its PNG plots and a manifest, so ``xqg report`` can gather them.
"""
