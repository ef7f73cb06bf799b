"""Where a patch encoder's weights would come from, told from its config without loading it.

Each encoder class answers for itself (``CLIPPatchEncoder.weights_source``,
``TimmPatchEncoder.weights_source``) with a :class:`WeightsSource`; this module holds the type
and the Hugging Face cache look-up they share (``huggingface_hub`` is imported only then).
"""
import os
import os.path as osp
from typing import NamedTuple, Optional, Sequence, Tuple

#: weights files of a hub repository, in the order the loaders prefer them
HUB_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin', 'open_clip_pytorch_model.bin',
                    'open_clip_model.safetensors')


class WeightsSource(NamedTuple):
    """Where an encoder's weights come from.

    Attributes:
        kind (str): ``'folder'`` (a local model folder), ``'file'`` (a local weights file),
            ``'cache'`` (the Hugging Face cache), ``'hub'`` (downloaded from the hub on first
            use), ``'download'`` (the library downloads them from elsewhere on first use) or
            ``'random'`` (no pretrained weights).
        location (str, optional): the folder or file (for ``'cache'``: the cached file).
        repo (str, optional): the hub repository (``'cache'``, ``'hub'``).
        files (Tuple[str, ...]): the files looked for in the repository.
        input_size (int, optional): the encoder's input side, when its config tells it without
            the weights.
        tokens (Tuple[int, Tuple[int, int]], optional): its token width and grid, likewise.
    """
    kind: str
    location: Optional[str] = None
    repo: Optional[str] = None
    files: Tuple[str, ...] = ()
    input_size: Optional[int] = None
    tokens: Optional[Tuple[int, Tuple[int, int]]] = None


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set (the hub is not to be contacted)."""
    return os.environ.get('HF_HUB_OFFLINE', '').lower() in ('1', 'true', 'yes', 'on')


def cached_file(repo: str, filenames: Sequence[str]) -> Optional[str]:
    """The local path of the first of ``filenames`` of ``repo`` in the Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache
    for name in filenames:
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str):
            return found
    return None


def hub_source(repo: str, files: Sequence[str], input_size: Optional[int] = None
               ) -> WeightsSource:
    """``'cache'`` when one of ``files`` of ``repo`` is cached, else ``'hub'``."""
    found = cached_file(repo, files)
    return WeightsSource('cache' if found else 'hub', found, repo, tuple(files), input_size)


def looks_like_path(spec: str) -> bool:
    """Whether a ``pretrained`` string names a folder rather than a hub id."""
    return spec.startswith(('/', '.', '~')) or osp.exists(spec) or spec.count('/') != 1
