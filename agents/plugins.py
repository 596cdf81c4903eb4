"""Your own code in an experiment: the modules a config's ``plugins`` key names, imported before its agents are
validated, so that the agents they register (:func:`agents.registry.register_agent`) can be used by name.

An entry is a dotted module name (importable from ``sys.path``) or the path of a ``.py`` file (relative to the
working directory).  Each is imported once per process: loading a config twice does not register twice.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType


def load_plugins(plugins: Sequence[str]) -> list[ModuleType]:
    """Import every entry of ``plugins`` (see the module docstring); ImportError naming the entry and why."""
    if isinstance(plugins, str) or not all(isinstance(entry, str) for entry in plugins):
        raise ImportError(f"plugins must be a list of module names or .py paths, got {plugins!r}")
    return [_load(entry) for entry in plugins]


def _load(entry: str) -> ModuleType:
    if not entry.endswith(".py"):
        try:
            return importlib.import_module(entry)
        except ImportError as error:
            raise ImportError(f"plugin {entry!r}: {error}") from None
    path = Path(entry).resolve()
    if not path.is_file():
        raise ImportError(f"plugin {entry!r}: no such file ({path})")
    name = f"edgesplit_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:
        del sys.modules[name]  # nothing half-loaded stays behind
        if isinstance(error, ImportError):
            raise ImportError(f"plugin {entry!r}: {error}") from error
        raise
    return module
