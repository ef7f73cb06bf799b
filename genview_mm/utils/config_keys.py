"""The value at a dotted config key, the way ``--cfg-options`` and ``--dataset-key`` name it."""
from typing import Any


def dotted_get(node: Any, key: str) -> Any:
    """The value at ``key`` (``'a.b.0.c'``: mappings, a ``Config`` too, by name; lists and
    tuples by index); a KeyError holding the key up to the first part that is not there."""
    walked = []
    for part in key.split('.'):
        walked.append(part)
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif hasattr(node, 'keys') and part in node:
            node = node[part]
        else:
            raise KeyError('.'.join(walked))
    return node
