"""Layer-graph profiles as versioned JSON files.

File layout (``schema_version`` 1)::

    {"schema_version": 1,
     "graph": {<graph attributes>},
     "nodes": [{"name": <vertex>, <vertex attributes>}, ...],   # in execution order
     "edges": [{"source": u, "target": v, <edge attributes>}, ...]}

Shipped profiles live in ``envs/profiles/models/<name>.json``; see
``docs/profiling.md`` for what each attribute means.
"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

SCHEMA_VERSION = 1
"""Version of the file layout and of the attribute set; bumped on any incompatible change."""

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles" / "models"
"""Directory of the shipped model profiles."""


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


def list_profiles(directory: str | Path = PROFILE_DIR) -> list[str]:
    """Names of the profiles in ``directory`` (default: the shipped ones), sorted."""
    return sorted(path.stem for path in Path(directory).glob("*.json"))


def load_profile(name: str, directory: str | Path = PROFILE_DIR) -> nx.DiGraph:
    """The profile called ``name`` from ``directory`` (default: the shipped profiles)."""
    available = list_profiles(directory)
    if name not in available:
        raise ValueError(f"unknown profile {name!r} in {directory}; available: {available}")
    return read_profile(Path(directory) / f"{name}.json")
