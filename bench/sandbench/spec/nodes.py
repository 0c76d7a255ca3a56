"""Which nodes a Kubernetes fan-out runs on, as the user writes it (``--nodes``,
``kubernetes.nodes``): ``all`` schedulable nodes, a comma list of names, or a label selector.
Parsed here, where the spec is checked; the backend asks the cluster which nodes that is
(backends/kubernetes/nodes.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: ``nodes`` spellings: everything schedulable, or a label selector given as such.
ALL = "all"
SELECTOR_PREFIX = "selector:"
#: What makes a ``nodes`` value a label selector rather than a list of names: an operator
#: (=, ==, !=, !key) or a set (in, notin). A bare key ("has this label") needs the prefix.
_SELECTOR = re.compile(r"[=!(]|\s(not)?in\s")
NODES_SYNTAX = ("all, a comma list of node names (a,b), or a label selector "
                "(role=bench, zone in (a,b), or selector:KEY for a bare key)")


@dataclass(frozen=True)
class NodeChoice:
    """A ``nodes`` value as what it asks for."""

    #: "all", "names" or "selector".
    kind: str
    #: The names (kind "names") in the order given.
    names: tuple[str, ...] = ()
    #: The label selector (kind "selector"), as the API server takes it.
    selector: str = ""


def parse_nodes(text: str) -> NodeChoice:
    """``--nodes`` / ``kubernetes.nodes`` as a NodeChoice; raises ValueError saying what is
    accepted. The API server parses a selector itself (and says what is wrong with one)."""
    value = text.strip()
    if value == ALL:
        return NodeChoice(ALL)
    if value.startswith(SELECTOR_PREFIX) or _SELECTOR.search(value):
        selector = value.removeprefix(SELECTOR_PREFIX).strip()
        if not selector:
            raise ValueError(f"nodes {text!r}: {SELECTOR_PREFIX} names no label; give "
                             f"{NODES_SYNTAX}")
        return NodeChoice("selector", selector=selector)
    names = [part.strip() for part in value.split(",")]
    if not value or not all(names):
        raise ValueError(f"nodes {text!r} names no node (or an empty one); give {NODES_SYNTAX}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"nodes {text!r}: node {dupes[0]!r} is listed twice")
    return NodeChoice("names", names=tuple(names))
