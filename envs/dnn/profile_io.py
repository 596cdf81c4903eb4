"""Layer-graph profiles as versioned JSON files.

File layout (``schema_version`` 1)::

    {"schema_version": 1,
     "graph": {<graph attributes>},
     "nodes": [{"name": <vertex>, <vertex attributes>}, ...],   # in execution order
     "edges": [{"source": u, "target": v, <edge attributes>}, ...]}

Shipped profiles live in ``envs/profiles/models/<name>.json``; see
``docs/profiling.md`` for what each attribute means.

Your own models: put their profiles in ``<folder>/models/<name>.json`` (and their accuracy
profiles in ``<folder>/accuracy/<name>.json``, :mod:`envs.dnn.accuracy`) and list the folder in the
environment variable ``EDGESPLIT_PROFILE_PATH`` (several separated by ``os.pathsep``).  Lookups by
name without a directory search those folders first, then the shipped ones, so scenarios, agents
and subprocess workers all see them.  Set it before the first environment is made: plans and costs
of a model are cached by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import networkx as nx

SCHEMA_VERSION = 1
"""Version of the file layout and of the attribute set; bumped on any incompatible change."""

SHIPPED_PROFILE_ROOT = Path(__file__).resolve().parent.parent / "profiles"
"""The shipped profile folder: ``models/`` (layer graphs) and ``accuracy/`` (accuracy profiles)."""

PROFILE_DIR = SHIPPED_PROFILE_ROOT / "models"
"""Directory of the shipped model profiles."""

PROFILE_PATH_VARIABLE = "EDGESPLIT_PROFILE_PATH"
"""Environment variable: folders (``os.pathsep``-separated) with ``models/`` and ``accuracy/`` of your own."""


def profile_roots() -> list[Path]:
    """Folders searched for profiles by name, in order: those of ``EDGESPLIT_PROFILE_PATH``, then the shipped
    ``envs/profiles``.  A listed folder that does not exist is an error naming it."""
    roots = [Path(entry) for entry in os.environ.get(PROFILE_PATH_VARIABLE, "").split(os.pathsep) if entry]
    missing = [str(root) for root in roots if not root.is_dir()]
    if missing:
        raise ValueError(f"{PROFILE_PATH_VARIABLE}: {missing} is not a folder (each entry needs models/ and, for "
                         f"use in a scenario, accuracy/)")
    return roots + [SHIPPED_PROFILE_ROOT]


def save_profile(graph: nx.DiGraph, path: str | Path) -> Path:
    """Write ``graph`` as JSON to ``path`` (parent folders are created) and return the path."""
    path = Path(path)
    document = {
        "schema_version": SCHEMA_VERSION,
        "graph": dict(graph.graph),
        "nodes": [{"name": name, **attributes} for name, attributes in graph.nodes(data=True)],
        "edges": [{"source": u, "target": v, **attributes} for u, v, attributes in graph.edges(data=True)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path


def read_profile(path: str | Path) -> nx.DiGraph:
    """Read a profile JSON file written by :func:`save_profile`."""
    document = json.loads(Path(path).read_text())
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"profile {path} has schema_version={version!r}; this code reads {SCHEMA_VERSION}")
    graph = nx.DiGraph(**document["graph"])
    for node in document["nodes"]:
        attributes = dict(node)
        graph.add_node(attributes.pop("name"), **attributes)
    for edge in document["edges"]:
        attributes = dict(edge)
        graph.add_edge(attributes.pop("source"), attributes.pop("target"), **attributes)
    return graph


def _model_folders(directory: str | Path | None) -> list[Path]:
    """``directory`` alone, or (None) the ``models/`` folder of every :func:`profile_roots` entry, in order."""
    return [Path(directory)] if directory is not None else [root / "models" for root in profile_roots()]


def list_profiles(directory: str | Path | None = None) -> list[str]:
    """Names of the profiles in ``directory`` (default: every folder of :func:`profile_roots`), sorted."""
    folders = _model_folders(directory)
    return sorted({path.stem for folder in folders for path in folder.glob("*.json")})


def load_profile(name: str, directory: str | Path | None = None) -> nx.DiGraph:
    """The profile called ``name`` from ``directory`` (default: the first of :func:`profile_roots` that has it)."""
    folders = _model_folders(directory)
    for folder in folders:
        if (folder / f"{name}.json").is_file():
            return read_profile(folder / f"{name}.json")
    raise ValueError(f"unknown profile {name!r} in {[str(folder) for folder in folders]}; available: "
                     f"{list_profiles(directory)}")
