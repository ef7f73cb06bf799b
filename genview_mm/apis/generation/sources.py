"""The reading stage: which source images there are (a folder, a list / annotation file or an
MMPretrain config's dataset, as ``ImageItem(path, key)`` sorted by key), how they are decoded
(as training decodes them, with ``mmcv.imfrombytes`` and OpenCV, MMPretrain's
``LoadImageFromFile``: EXIF orientation applied, 16-bit images scaled to 8 bits), and the
batches a prefetch thread reads ahead of the models."""
import logging
import os
import os.path as osp
import queue
import threading
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ...structures.manifest import source_key
from ...utils.image_files import IMAGE_EXTENSIONS
from .errors import TRANSIENT, UNDECODABLE, failure_reason

logger = logging.getLogger(__name__)


class ImageItem(NamedTuple):
    path: str  # absolute path
    key: str  # path relative to the source root, '/'-separated (structures.manifest.source_key)


def _item(path: str, root: str) -> ImageItem:
    return ImageItem(osp.abspath(path), source_key(path, root))


def _walk(folder: str) -> List[str]:
    """Image files under ``folder``, following links, skipping hidden names (``.x``, ``._x``)
    as mmengine's file listing does, and each symlink that leads back to a folder above it."""
    found, stack = [], [(folder, (osp.realpath(folder), ))]
    while stack:
        path, ancestors = stack.pop()
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith('.'):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue  # a dangling link
            if not is_dir:
                if entry.name.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(entry.path)
                continue
            real = osp.realpath(entry.path)
            if real in ancestors:
                logger.warning('skipping %s: a symlink cycle (it leads back to %s)', entry.path,
                               real)
                continue
            stack.append((entry.path, ancestors + (real, )))
    return found


def list_folder(folder: str) -> List[ImageItem]:
    """All images under ``folder`` (recursive), keyed by their relative path."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Image folder not found: {folder!r}')
    root = osp.abspath(folder)
    return sorted((_item(p, root) for p in _walk(root)), key=lambda it: it.key)


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
    node = Config.fromfile(config)
    for part in dataset_key.split('.'):
        node = node[part]
    ds_cfg = dict(node, pipeline=[])
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


def decode_image(data: bytes, path: str = '<bytes>'):
    """RGB PIL image of encoded ``data``, decoded as ``LoadImageFromFile`` decodes it
    (``mmcv.imfrombytes``, OpenCV, ``flag='color'``).

    Raises:
        ValueError: the bytes are not an image OpenCV can decode.
    """
    import mmcv
    from PIL import Image
    try:
        array = mmcv.imfrombytes(data, flag='color', channel_order='rgb', backend='cv2')
    except Exception:  # noqa: BLE001  (cv2.error when OpenCV returns nothing)
        array = None
    if array is None:
        raise ValueError(f'cannot decode image file {path!r}')
    return Image.fromarray(array)


def load_image(path: str) -> Tuple[Optional[object], Optional[str]]:
    """(the RGB image at ``path``, None) or (None, failure reason): reading errors (missing
    file, permission, I/O) are transient; a file that was read but does not decode is
    undecodable."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError as exc:
        return None, failure_reason(TRANSIENT, 'missing file', exc)
    except (OSError, MemoryError) as exc:
        return None, failure_reason(TRANSIENT, 'unreadable file', exc)
    try:
        return decode_image(data, path), None
    except MemoryError as exc:
        return None, failure_reason(TRANSIENT, 'out of memory', exc)
    except ValueError as exc:
        return None, failure_reason(UNDECODABLE, 'undecodable image', exc)


def read_batches(gen, todo: Sequence[ImageItem], batch_size: int, analyse: bool):
    """Yield ``(pairs, pixels, failed)`` per batch: the decoded ``(item, image)`` pairs, their
    CLIP pixels (``gen.preprocess``, when it has one and ``analyse``) and the ``(item,
    reason)`` of the images that failed to load. Host work only: it runs in the prefetch
    thread."""
    for start in range(0, len(todo), batch_size):
        pairs, failed = [], []
        for item in todo[start:start + batch_size]:
            img, why = load_image(item.path)
            (pairs.append((item, img)) if why is None else failed.append((item, why)))
        pixels = None
        if analyse and pairs and hasattr(gen, 'preprocess'):
            try:
                pixels = gen.preprocess([img for _, img in pairs])
            except Exception as exc:  # noqa: BLE001
                logger.warning('preprocessing failed (%s); retrying it at generation', exc)
        yield pairs, pixels, failed


def prefetch_batches(batches) -> Iterator:
    """``batches`` produced by a thread two batches ahead of the caller."""
    out: queue.Queue = queue.Queue(maxsize=2)

    def work() -> None:
        try:
            for batch in batches:
                out.put(batch)
            out.put(None)
        except BaseException as exc:  # noqa: BLE001  (handed to the main thread)
            out.put(exc)

    threading.Thread(target=work, daemon=True, name='view-prefetch').start()
    while True:
        batch = out.get()
        if isinstance(batch, BaseException):
            raise batch
        if batch is None:
            return
        yield batch


def check_out_dir(out_dir: str, source: str, items: Sequence[ImageItem]) -> None:
    """Raise ValueError when ``out_dir`` is inside a source folder or holds source images (a
    rerun would make views of views, and ``--overwrite`` could reach the sources)."""
    outs = {osp.realpath(out_dir), osp.abspath(out_dir)}
    roots = {osp.realpath(source), osp.abspath(source)} if osp.isdir(source) else set()
    inside = [r for r in roots for o in outs if o == r or o.startswith(r + os.sep)]
    held = next((it.path for it in items for o in outs if it.path.startswith(o + os.sep)),
                None)
    if inside or held:
        what = f'is inside the source folder {source!r}' if inside else \
            f'holds source images ({held!r})'
        raise ValueError(f'--out-dir {out_dir!r} {what}: pass an --out-dir outside the '
                         'source (views would be listed as sources on the next run)')
