"""The images of a dataset as the tools see them: a folder, a list / annotation file or an
MMPretrain config's dataset, as ``ImageItem(path, key)`` sorted by key, and one image decoded as
training decodes it (``mmcv.imfrombytes`` with OpenCV, as MMPretrain's ``LoadImageFromFile``:
EXIF orientation applied, 16-bit images scaled to 8 bits). Used by view generation, the PCA
fit, the official PCA import and the manifest merge."""
import errno
import logging
import os
import os.path as osp
from typing import Iterator, List, NamedTuple, Optional, Tuple

from ..structures.manifest import TRANSIENT, UNDECODABLE, failure_reason, source_key
from ..utils.annotation_list import NotText, read_annotation_list
from ..utils.config_keys import dotted_get
from ..utils.image_files import IMAGE_EXTENSIONS, is_hidden

logger = logging.getLogger(__name__)

DEFAULT_DATASET_KEY = 'train_dataloader.dataset'  # where a config source's dataset sits


class ImageItem(NamedTuple):
    path: str  # absolute path
    key: str  # path relative to the source root, '/'-separated (structures.manifest.source_key)


def _items(paths, root: Optional[str]) -> List[ImageItem]:
    """The images at ``paths`` keyed under ``root``; without one (None or ``''``: a config
    dataset without data_root) a relative path is keyed as the dataset reads it, from the
    current folder, and an absolute one by itself (it was keyed relative to the folder the
    tool ran from: a rerun from elsewhere made every view again). ValueError for two images of
    one key (one output file, one seed and one row for two images)."""
    root, cwd = (osp.abspath(root) if root else None), os.getcwd()
    items = sorted({ImageItem(osp.abspath(p), source_key(p, root or (
        None if osp.isabs(p) else cwd))) for p in paths}, key=lambda it: it.key)
    for item, after in zip(items, items[1:] + [None]):
        try:
            item.key.encode('utf-8')
        except UnicodeEncodeError:
            raise ValueError(f'{item.path!r}: the file name is not valid UTF-8 (keys and '
                             'manifests are UTF-8 text): rename it') from None
        if after is not None and after.key == item.key:  # one under root, one outside it
            first, second = sorted((item.path, after.path))
            raise ValueError(f'{first!r} and {second!r} have the same key {item.key!r} '
                             f'(paths relative to {root}, else absolute): list one of them')
    return items


def _walk(folder: str) -> Iterator[str]:
    """Image files under ``folder``, following links, skipping hidden files (``.x``, ``._x``;
    hidden folders are walked) and dangling links as mmengine's listing, and so MMPretrain's
    folder datasets, do, and each symlink back to a folder above it (with a warning)."""
    stack = [(folder, (osp.realpath(folder), ))]
    while stack:
        path, ancestors = stack.pop()
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue  # a dangling link
            real = osp.realpath(entry.path) if is_dir else None
            if real in ancestors:
                logger.warning('skipping %s: a symlink cycle (it leads back to %s)', entry.path,
                               real)
            elif is_dir:
                stack.append((entry.path, ancestors + (real, )))
            elif not is_hidden(entry.name) and \
                    entry.name.lower().endswith(IMAGE_EXTENSIONS) and _is_file(entry):
                yield entry.path  # a file, or a link to one: not a dangling link (mmengine's too)


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def has_image(folder: str) -> bool:
    """Whether :func:`list_folder` would find an image (stops at the first)."""
    return next(_walk(osp.abspath(folder)), None) is not None


def list_folder(folder: str) -> List[ImageItem]:
    """All images under ``folder`` (recursive), keyed by their relative path."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Image folder not found: {folder!r}')
    return _items(_walk(osp.abspath(folder)), folder)


def list_file(list_file: str, data_root: Optional[str] = None) -> List[ImageItem]:
    """Images named in a list / MMPretrain annotation file (``utils.annotation_list``);
    relative names start from ``data_root`` (default: the list file's folder)."""
    if not osp.isfile(list_file):
        raise FileNotFoundError(f'Image list not found: {list_file!r}')
    root = data_root if data_root is not None else osp.dirname(osp.abspath(list_file))
    try:
        return _items((osp.join(root, p) for p, _ in read_annotation_list(list_file)), root)
    except NotText:
        raise ValueError(f'{list_file!r} is not a text list of image paths (not UTF-8 text): '
                         'pass an image folder, an image list / MMPretrain annotation file, or '
                         'an MMPretrain config (.py)') from None


def read_config(config: str):
    """``Config.fromfile(config)``; a file that does not parse or run (a syntax error, an
    undefined name, a base config that fails) is a ValueError naming it (a missing file stays
    an OSError)."""
    from mmengine.config import Config
    try:
        return Config.fromfile(config)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001  (whatever the config's code raises)
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else 'no detail'
        raise ValueError(f'{config} cannot be read as an MMPretrain config '
                         f'({type(exc).__name__}: {detail}): fix it, or pass an image folder '
                         'or list instead') from None


def list_config(config: str, dataset_key: str = DEFAULT_DATASET_KEY,
                data_root: Optional[str] = None) -> Tuple[List[ImageItem], Optional[str]]:
    """Images of the dataset an MMPretrain config builds at ``dataset_key`` (dotted; a list's
    item by its index), and the folder it walks (its image folder; None where it reads an
    annotation list). A key the config lacks, or a dataset that fails to build, is a
    ValueError saying which (a missing file stays an OSError)."""
    from mmpretrain.registry import DATASETS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    try:
        node = dotted_get(read_config(config), dataset_key)
    except KeyError as exc:
        raise ValueError(f'--dataset-key {dataset_key!r}: {config} has no {exc.args[0]!r}: '
                         'pass the dotted key of its dataset, e.g. train_dataloader.dataset'
                         ) from None
    if not hasattr(node, 'keys') or 'type' not in node:
        raise ValueError(f'--dataset-key {dataset_key!r}: that entry of {config} is not a '
                         'dataset (a dict with a type): pass the dotted key of its dataset, e.g. '
                         'train_dataloader.dataset')
    try:
        dataset = DATASETS.build(dict(node, pipeline=[], **(
            {'data_root': data_root} if data_root is not None else {})))
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # MMPretrain's scan follows links: it cannot skip a cycle
            raise ValueError(
                f'the dataset at {dataset_key} of {config} cannot be listed: a symlink cycle '
                f'under its folder ({_cycle_link(str(exc.filename))} links back to a folder '
                'above it); MMPretrain would stop there in training too: remove that link'
                ) from None
        raise
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001  (a registry KeyError, a dataset's own checks)
        raise ValueError(f'the dataset at {dataset_key} of {config} cannot be built '
                         f'({type(exc).__name__}: {exc})') from exc
    root = getattr(dataset, 'img_prefix', None) or dataset.data_root or ''
    return (_items((dataset.get_data_info(i)['img_path'] for i in range(len(dataset))), root),
            walked_folder(dataset))


def walked_folder(dataset) -> Optional[str]:
    """The folder a built dataset without an ``ann_file`` lists its images from (its image
    prefix, else its ``data_root``, else the current folder: every image file under it is a
    sample, a file written there too), or None for one that reads an annotation file."""
    if getattr(dataset, 'ann_file', ''):
        return None
    root = getattr(dataset, 'img_prefix', None) or getattr(dataset, 'data_root', None) or ''
    return osp.normpath(root) if root else '.'


def _cycle_link(path: str) -> str:
    """The first link on ``path`` that points to a folder above itself (``path``: where a walk
    following links gave up), else ``path``."""
    parts = path.split(os.sep)
    for end in range(2, len(parts) + 1):
        here = os.sep.join(parts[:end])
        if osp.islink(here):
            target, parent = osp.realpath(here), osp.realpath(osp.dirname(here))
            if parent == target or parent.startswith(target.rstrip(os.sep) + os.sep):
                return here
    return path


def check_source_options(source: str, data_root: Optional[str] = None,
                         dataset_key: Optional[str] = None) -> None:
    """ValueError if ``--data-root`` or ``--dataset-key`` does not apply to ``source``: a
    folder is read from its own paths and only a config has dataset keys, so such an option
    was ignored and a user who meant another dataset got this one's images."""
    if data_root is not None and osp.isdir(source):
        raise ValueError(f'--data-root applies to a list file or a config, but {source!r} is a '
                         'folder, whose images are read from their own paths: drop --data-root, '
                         'or pass the folder it names as the source')
    if dataset_key is not None and not source.endswith('.py'):
        raise ValueError(f'--dataset-key applies to an MMPretrain config (.py) source, but '
                         f'{source!r} is not one: drop --dataset-key, or pass the config')


def list_images(source: str, data_root: Optional[str] = None,
                dataset_key: Optional[str] = None) -> List[ImageItem]:
    """A folder, a ``.py`` MMPretrain config (its dataset at ``dataset_key``, default
    ``train_dataloader.dataset``), or a list / annotation file. An option that does not
    apply to the source is a ValueError (``check_source_options``)."""
    return list_source(source, data_root, dataset_key)[0]


def list_source(source: str, data_root: Optional[str] = None, dataset_key: Optional[str] = None
                ) -> Tuple[List[ImageItem], Optional[str]]:
    """:func:`list_images`, and the folder the source walks (a folder source itself, the
    image folder of a config's dataset that reads no annotation list; None for a list): what a
    later listing would find an output folder's files in."""
    if not osp.exists(source):
        raise FileNotFoundError(f'source not found: {source!r} (pass an image folder, an image '
                                'list / MMPretrain annotation file, or an MMPretrain config .py)')
    check_source_options(source, data_root, dataset_key)
    if osp.isdir(source):
        return list_folder(source), source
    if source.endswith('.py'):
        return list_config(source, dataset_key or DEFAULT_DATASET_KEY, data_root)
    return list_file(source, data_root), None


def load_image(path: str) -> Tuple[Optional[object], Optional[str]]:
    """(the RGB PIL image at ``path``, None) or (None, failure reason): a read error is
    transient, a folder or a file that does not decode undecodable."""
    from PIL import Image
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError as exc:
        return None, failure_reason(TRANSIENT, 'missing file', exc)
    except IsADirectoryError as exc:  # a list naming a folder: no rerun reads an image there
        return None, failure_reason(UNDECODABLE, 'not a file', exc)
    except (OSError, MemoryError) as exc:
        return None, failure_reason(TRANSIENT, 'unreadable file', exc)
    array, reason = decode_image(data, path)
    return (None if array is None else Image.fromarray(array)), reason


def decode_image(data: bytes, path: str) -> Tuple[Optional[object], Optional[str]]:
    """(the RGB uint8 array of an image file's bytes, None) or (None, failure reason),
    decoded as training decodes it; ``path`` names the file in the reason."""
    import mmcv
    try:
        array = mmcv.imfrombytes(data, flag='color', channel_order='rgb', backend='cv2')
    except MemoryError as exc:
        return None, failure_reason(TRANSIENT, 'out of memory', exc)
    except Exception:  # noqa: BLE001  (cv2.error when OpenCV returns nothing)
        array = None
    if array is None:
        exc = ValueError(f'cannot decode image file {path!r}')
        return None, failure_reason(UNDECODABLE, 'undecodable image', exc)
    return array, None
