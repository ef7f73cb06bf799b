"""Where source images come from: a folder, a file list / MMPretrain annotation file, or an
MMPretrain config's dataset. Each source yields ``ImageItem(path, key)`` sorted by key, where
``key`` is the path relative to the source root (the image's stable identity)."""
import os
import os.path as osp
from typing import List, NamedTuple, Optional

from ..utils.image_files import IMAGE_EXTENSIONS


class ImageItem(NamedTuple):
    path: str  # absolute path
    key: str  # path relative to the source root, '/'-separated


def _item(path: str, root: str) -> ImageItem:
    path = osp.abspath(path)
    rel = osp.relpath(path, root) if root else path
    if rel.startswith('..'):
        rel = path.lstrip('/\\')
    return ImageItem(path, rel.replace(os.sep, '/'))


def list_folder(folder: str) -> List[ImageItem]:
    """All images under ``folder`` (recursive), keyed by their relative path."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Image folder not found: {folder!r}')
    root = osp.abspath(folder)
    items = [_item(osp.join(d, f), root) for d, _, files in os.walk(root, followlinks=True)
             for f in files if f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(items, key=lambda it: it.key)


def list_file(list_file: str, data_root: Optional[str] = None) -> List[ImageItem]:
    """Images named in a text file, one per line (an MMPretrain annotation file's trailing
    integer label is dropped). Relative names are resolved against ``data_root`` (default: the
    list file's folder)."""
    if not osp.isfile(list_file):
        raise FileNotFoundError(f'Image list not found: {list_file!r}')
    root = osp.abspath(data_root if data_root is not None else osp.dirname(list_file))
    items = []
    with open(list_file, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) == 2 and parts[1].lstrip('-').isdigit():
                line = parts[0]
            items.append(_item(line if osp.isabs(line) else osp.join(root, line), root))
    return sorted(set(items), key=lambda it: it.key)


def list_config(config: str, dataset_key: str = 'train_dataloader.dataset',
                data_root: Optional[str] = None) -> List[ImageItem]:
    """Images of the dataset an MMPretrain config builds at ``dataset_key``."""
    from mmengine.config import Config
    from mmpretrain.registry import DATASETS
    from mmpretrain.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(config)
    node = cfg
    for part in dataset_key.split('.'):
        node = node[part]
    ds_cfg = dict(node)
    ds_cfg['pipeline'] = []
    if data_root is not None:
        ds_cfg['data_root'] = data_root
    dataset = DATASETS.build(ds_cfg)
    root = osp.abspath(getattr(dataset, 'img_prefix', None) or dataset.data_root or '')
    items = [_item(dataset.get_data_info(i)['img_path'], root) for i in range(len(dataset))]
    return sorted(set(items), key=lambda it: it.key)


def list_images(source: str, data_root: Optional[str] = None,
                dataset_key: str = 'train_dataloader.dataset') -> List[ImageItem]:
    """Dispatch on ``source``: a folder, a ``.py`` MMPretrain config, or a list/annotation file.

    Raises:
        FileNotFoundError: ``source`` does not exist (named as such, whatever kind was meant).
    """
    if not osp.exists(source):
        raise FileNotFoundError(f'source not found: {source!r} (pass an image folder, an image '
                                'list / MMPretrain annotation file, or an MMPretrain config .py)')
    if osp.isdir(source):
        return list_folder(source)
    if source.endswith('.py'):
        return list_config(source, dataset_key, data_root)
    return list_file(source, data_root)
