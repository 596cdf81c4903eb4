"""Reproductions of the source papers' comparisons: one module per paper.

Each module has a pydantic config model (``CONFIG``) read from
``configs/experiments/reproductions/<name>.yaml`` and a ``run(config, output)``
that writes tables (CSV + Markdown, mean ± 95 % CI over seeds) and figures
into ``results/<name>/``.  ``scripts/reproduce.py`` is the command line.
"""

from reproductions.registry import REPRODUCTIONS, reproduction_names

__all__ = ["REPRODUCTIONS", "reproduction_names"]
