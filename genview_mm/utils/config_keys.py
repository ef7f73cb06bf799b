"""The value at a dotted config key, the way ``--cfg-options`` and ``--dataset-key`` name it,
and the class a config dict's ``type`` names."""
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


def type_name(node: Any) -> str:
    """The class name ``node['type']`` names, however spelt: ``'Name'``, a scoped
    ``'mmpretrain.Name'`` or the class itself (new-style configs); '' for a node without one."""
    kind = node.get('type') if isinstance(node, dict) else None
    if isinstance(kind, str):
        return kind.rsplit('.', 1)[-1]
    return getattr(kind, '__name__', '') if kind is not None else ''
