"""Does a checkpoint fit the model it will load into? Keys and shapes compared, no weights read.

The checkpoint is opened memory-mapped (its tensors' shapes without their data) and the module
it initialises is built from the config with its parameters on the ``meta`` device (shapes
without memory or initialisation), then its state dict is compared with the checkpoint's as
MMEngine would load it (``prefix`` of an ``init_cfg``, ``module.`` stripped).
"""
import copy
import re
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from mmengine.registry import MODELS, DefaultScope

from ...utils.config_keys import shown_type
from .checklist import BROKEN, NOTE, OK

Shapes = Dict[str, Tuple[int, ...]]
#: buffers a checkpoint may lack without harm
IGNORED = ('num_batches_tracked',)


def checkpoint_shapes(ckpt) -> Optional[Shapes]:
    """The tensors' shapes of a loaded checkpoint's state dict (None when it holds none)."""
    if not isinstance(ckpt, dict):
        return None
    state = ckpt.get('state_dict', ckpt)
    if not isinstance(state, dict):
        return None
    shapes = {str(k): tuple(v.shape) for k, v in state.items() if hasattr(v, 'shape')}
    return shapes or None


def as_loaded(shapes: Shapes, prefix: Optional[str]) -> Shapes:
    """The keys MMEngine loads: those under ``prefix`` (stripped), else ``module.`` stripped."""
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        return {k[len(prefix):]: s for k, s in shapes.items() if k.startswith(prefix)}
    return {re.sub(r'^module\.', '', k): s for k, s in shapes.items()}


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Modules built inside have their parameters on the ``meta`` device: each parameter is
    replaced by a meta tensor of its shape as it is registered, so its initialisation costs
    nothing, while the rest of a constructor (``torch.linspace(...).item()`` for drop-path
    rates, buffers) runs on the CPU as usual."""
    register = torch.nn.Module.register_parameter

    def on_meta(module, name, param):
        if param is not None and param.device.type != 'meta':
            param = torch.nn.Parameter(param.to('meta'), requires_grad=param.requires_grad)
        register(module, name, param)

    torch.nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def module_shapes(node: dict, scope: Optional[str]) -> Tuple[Optional[Shapes], str]:
    """(state-dict shapes of the module a config node builds, its type), parameters on meta.

    Returns None for the shapes when the module cannot be built here (the check then compares
    nothing rather than guessing).
    """
    node = copy.deepcopy(dict(node))
    node.pop('init_cfg', None)
    if 'scorer' in node:  # GenView's frozen scorer: never in checkpoints, and without one
        node['scorer'] = torch.nn.Identity()  # the model warns that it has none
    kind = shown_type(node, 'model')
    try:
        with DefaultScope.overwrite_default_scope(scope), parameters_on_meta():
            module = MODELS.build(node)
        return {k: tuple(v.shape) for k, v in module.state_dict().items()}, kind
    except Exception:  # noqa: BLE001  (a model that cannot be built here is not compared)
        return None, kind


def _shape(shape: tuple) -> str:
    return str(tuple(shape))


def _examples(keys, n: int = 3) -> str:
    """The first ``n`` keys, in state-dict order."""
    return ', '.join(f"'{k}'" for k in list(keys)[:n])


def _resized_on_load(key: str, saved: tuple, wanted: tuple) -> bool:
    """Whether MMPretrain's ViTs resize this tensor while loading it: a ``pos_embed`` of
    another token count (a checkpoint of another image size), its width the same."""
    return (key.split('.')[-1] == 'pos_embed' and len(saved) == len(wanted) == 3
            and saved[0] == wanted[0] and saved[2] == wanted[2])


def _extra_blocks(unused: List[str], common: set) -> List[str]:
    """The unused checkpoint keys that are further blocks of a stage the model has: the key of
    a loaded tensor with only a block number changed (``layer3.6.conv1.weight`` beside
    ``layer3.5.conv1.weight``, ``layers.12.*`` beside ``layers.11.*``). A stage the model has
    not at all (a C4 backbone's ``layer4``, which its RoI head holds) does not count."""
    loaded_by_pattern: Dict[str, List[List[str]]] = {}
    for k in common:
        loaded_by_pattern.setdefault(re.sub(r'\d+', '#', k), []).append(k.split('.'))
    extra = []
    for k in unused:
        parts = k.split('.')
        for other in loaded_by_pattern.get(re.sub(r'\d+', '#', k), ()):
            first = next(i for i, (a, b) in enumerate(zip(parts, other)) if a != b)
            if parts[first].isdigit():
                extra.append(k)
                break
    return extra


def compare(loaded: Shapes, model: Shapes, kind: str, whole_model: bool,
            lenient: bool = False) -> Tuple[str, str]:
    """(status, what was found): the checkpoint's keys and shapes against the model's.

    BROKEN when no key matches, when a matching key has another shape (MMEngine would skip it
    with a warning and keep the random initialisation), when the model has blocks or stages the
    checkpoint lacks (``layer3.6.*`` missing beside ``layer3.0.*``) or blocks more than the
    model has (``layer3.6.*`` unused beside ``layer3.5.*``), or tensors before the first
    that loads (the stem, ``conv1``/``bn1``, of a backbone file without it), or, for a whole
    model, when a component with weights (``neck``, ``roi_head``, ...) has none in the
    checkpoint, or when most of the model's tensors are missing while the checkpoint has
    tensors the model has no place for (layers under other names); NOTE when some of the model's
    tensors are not in it; else OK. ``lenient`` (``load_from``, which may fine-tune from another
    head on purpose) notes what a strict check refuses, unless nothing fits.
    """
    bad = NOTE if lenient else BROKEN
    common = set(loaded) & set(model)
    if not common:
        return BROKEN, (f'none of its {len(loaded)} tensors belongs to the {kind} it loads '
                        f'into (checkpoint keys: {_examples(loaded)}; the {kind}\'s: '
                        f'{_examples(model)})')
    wrong = [k for k in model if k in common and loaded[k] != model[k]
             and not _resized_on_load(k, loaded[k], model[k])]
    if wrong:
        k = wrong[0]
        return bad, (f'{len(wrong)} of its tensors have other shapes than the {kind}\'s, '
                        f"e.g. '{k}' {_shape(loaded[k])} in the checkpoint, {_shape(model[k])} "
                        'in the model')
    missing = [k for k in model if k not in loaded and not k.endswith(IGNORED)]
    # a missing tensor whose name differs from a loaded one only in its numbers (layer3.6.* while
    # layer3.0.* is there, layer4.* beside layer1-3.*): blocks or stages of the same network
    # that the checkpoint lacks (a shallower or cut network), not a layer new to this model
    loaded_patterns = {re.sub(r'\d+', '#', k) for k in common}
    short = [k for k in missing if re.sub(r'\d+', '#', k) in loaded_patterns]
    if short:
        return bad, (f'it has fewer blocks or stages than the {kind}: {len(short)} of the '
                     f'{kind}\'s tensors are not in it and would keep their random '
                     f'initialisation, e.g. {_examples(short)} (a checkpoint of a shallower '
                     'network, or one missing layers?)')
    extra = _extra_blocks([k for k in loaded if k not in model and not k.endswith(IGNORED)],
                          common)
    if extra:
        return bad, (f'it has more blocks than the {kind}: {len(extra)} of its tensors are '
                     f'blocks the {kind} has no place for, e.g. {_examples(extra)}, so the '
                     'layers after them would start from features they were not trained on '
                     '(a checkpoint of a deeper network, e.g. a ResNet-101 for a ResNet-50?)')
    # the tensors before the first one that loads: the input side (a ResNet's stem, a ViT's
    # embeddings), which every later layer depends on; a new layer is added further on
    first = next(i for i, k in enumerate(model) if k in common)
    front = [k for k in list(model)[:first] if k in missing]
    if front:
        return bad, (f'its input layers are not in it: {len(front)} of the {kind}\'s tensors '
                     f'before the first that loads would keep their random initialisation, '
                     f'e.g. {_examples(front)} (a checkpoint of a network with another stem, '
                     'or one missing layers?)')
    stats = [k for k in model if k.endswith(('.running_mean', '.running_var'))]
    if stats and set(stats) <= set(missing) and any(
            k.rsplit('.', 1)[0] + '.weight' in common for k in stats):
        return bad, (f'it has no normalisation statistics: all {len(stats)} running_mean and '
                     f'running_var tensors of the {kind} are missing while its norm weights '
                     'load, so its BatchNorms would normalise with 0 and 1 (a frozen probe '
                     'learns on that): a file saved from named_parameters(), without buffers? '
                     'Save the model\'s state_dict() instead')
    parts: List[str] = []
    for k in missing if whole_model else ():
        part = k.split('.', 1)[0]
        if part not in parts and not any(m.startswith(part + '.') for m in common):
            parts.append(part)
    if parts:
        return bad, (f'it has no weights for {", ".join(parts)} of the {kind} (a checkpoint '
                        'of another model: a pretraining, classification or backbone-only '
                        'file?)')
    unused = [k for k in loaded if k not in model and not k.endswith(IGNORED)]
    if unused and 2 * len(missing) > len(model):  # most of it stays random, and the file has
        # tensors it has no place for: its layers go by other names (GroupNorm for BatchNorm)
        return bad, (f'most of the {kind}\'s tensors are not in it: {len(missing)} of '
                     f'{len(model)} would keep their random initialisation, e.g. '
                     f'{_examples(missing)}, while {len(unused)} of its tensors have no place in '
                     f'the {kind}, e.g. {_examples(unused)} (a network with other layers or '
                     'another normalisation, or keys renamed?)')
    if missing:
        return NOTE, (f'{len(common)} tensors fit the {kind}, {len(missing)} of its tensors are '
                      f'not in the checkpoint and keep their initialisation, e.g. '
                      f'{_examples(missing)}' + (f'; the checkpoint\'s tensors it has no place '
                                                 f'for: {_examples(unused)}' if unused else ''))
    return OK, f'all {len(common)} tensors fit the {kind}'
