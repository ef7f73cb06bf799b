"""The value at a dotted config key, the way ``--cfg-options`` and ``--dataset-key`` name it,
the class a config dict's ``type`` names, and the keys that class does not take."""
import ast
import inspect
import textwrap
from typing import Any, List


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


def shown_type(node: Any, default: str) -> str:
    """``node['type']`` as a message shows it: as spelt, a class by its name (not
    ``<class '...'>``), ``default`` for a node without one."""
    kind = node.get('type') if isinstance(node, dict) else None
    return kind if isinstance(kind, str) else (type_name(node) or default)


#: the packages whose classes pass ``**kwargs`` on to ``super().__init__`` (a class of
#: another, the user's, may read some of them itself: then nothing is known)
PASSES_KWARGS_ON = ('genview_mm.', 'mmpretrain.', 'mmdet.', 'mmengine.')


def passes_kwargs_on(init, name: str) -> bool:
    """Whether ``init``'s source hands its ``**name`` to an ``__init__`` call (``super().__init__
    (**kwargs)``, ``Base.__init__(self, **kwargs)``); False where it does not (MMPretrain's
    ``TimmClassifier`` gives them to ``timm.create_model``) or its source is not at hand."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return False
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr == '__init__'
               and any(k.arg is None and isinstance(k.value, ast.Name) and k.value.id == name
                       for k in node.keywords)
               for node in ast.walk(tree))


def unknown_arguments(cls, cfg: dict) -> List[str]:
    """The keys of ``cfg`` (besides ``type`` and ``_scope_``) that building ``cls`` from it
    refuses: its ``__init__`` names none of them, nor do those it passes ``**kwargs`` on to
    (the next ``__init__`` up its MRO, as ``super().__init__(**kwargs)``, in the packages of
    :data:`PASSES_KWARGS_ON` and where its source shows that call; none where that is not
    known)."""
    taken = {'type', '_scope_'}
    for klass in cls.__mro__ if cls is not None else ():
        init = vars(klass).get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):  # a builtin's: nothing known
            return []
        taken.update(p.name for p in params)
        varkw = [p.name for p in params if p.kind is p.VAR_KEYWORD]
        if not varkw:
            return sorted(k for k in cfg if isinstance(k, str) and k not in taken)
        if not (klass.__module__.startswith(PASSES_KWARGS_ON)
                and passes_kwargs_on(init, varkw[0])):
            return []
    return []
