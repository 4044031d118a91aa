"""`[cluster]` in pbx.toml: this node is one of several sharing one store (docs/scaling.md).

Called from ``pbxcore.config._check`` with its ``_Checker``.  "A cluster is configured" means
the file has a ``[cluster]`` table; ``nodes`` lists the ``[node] id`` of every node that shares
the store (this node's own id must be among them, each once).  Several nodes share state only
through PostgreSQL: a cluster on ``sqlite://`` or ``memory://`` is refused (`pbx check` and
`pbx run` say so), because an SQLite file is one machine's and memory is one process's.
Without ``[cluster]`` a node runs alone, as before.

``secret`` is the key every node signs its digest nonces with (``DigestServer``): the same on
all nodes, a challenge one node sent is answered at another (Kamailio's round-robin sends the
answering INVITE to the next node).  Without it each node draws a random key at start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbxcore.config import _Checker

CLUSTER_KEYS = ("nodes", "secret")
MIN_SECRET = 16
_NODE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class ClusterConfig:
    nodes: tuple[str, ...] = ()  # [cluster] nodes: the [node] ids sharing the store
    secret: str = field(default="", repr=False)  # [cluster] secret: shared nonce key ("" = own)


def check_cluster(c: _Checker, doc: dict[str, Any], node: str, dsn: str) -> ClusterConfig | None:
    if "cluster" not in doc:
        return None
    table = c.table(doc, "cluster")
    raw = c.get(table, "nodes", list, [], ("cluster", "[cluster]", 0))
    nodes: list[str] = []
    for value in raw:
        if not isinstance(value, str) or not _NODE_ID.match(value):
            c.fail("cluster", f"nodes in [cluster] must be node ids (1-64 of A-Z a-z 0-9 _ . -), "
                   f"not {value!r}", "nodes")
        elif value in nodes:
            c.fail("cluster", f"node {value!r} is listed twice in [cluster] nodes", "nodes")
        else:
            nodes.append(value)
    if nodes and node not in nodes:
        c.fail("cluster", f"this node's [node] id {node!r} is not in [cluster] nodes "
               f"({', '.join(nodes)})", "nodes")
    secret = c.get(table, "secret", str, "", ("cluster", "[cluster]", 0))
    if secret and len(secret) < MIN_SECRET:
        # never echo the value: pbx check output ends up in tickets
        c.fail("cluster", f"secret in [cluster] must be at least {MIN_SECRET} characters",
               "secret")
    if not dsn.startswith(("postgresql://", "postgres://")):
        scheme = dsn.split(":", 1)[0]
        c.fail("cluster", f"a cluster ([cluster]) needs a shared PostgreSQL store, but [store] "
               f"dsn is {scheme}://: an SQLite file belongs to one machine (see docs/scaling.md)")
    return ClusterConfig(tuple(nodes), secret)
