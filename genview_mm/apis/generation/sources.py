"""The reading stage: the source images (a folder, a list / annotation file or an MMPretrain
config's dataset) as ``ImageItem(path, key)`` sorted by key, decoded as training decodes them
(``mmcv.imfrombytes`` with OpenCV, as MMPretrain's ``LoadImageFromFile``: EXIF orientation
applied, 16-bit images scaled to 8 bits), in batches read ahead by a prefetch thread."""
import logging
import os
import os.path as osp
import queue
import threading
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ...structures.manifest import TRANSIENT, UNDECODABLE, failure_reason, source_key
from ...utils.annotation_list import read_annotation_list
from ...utils.image_files import IMAGE_EXTENSIONS

logger = logging.getLogger(__name__)


class ImageItem(NamedTuple):
    path: str  # absolute path
    key: str  # path relative to the source root, '/'-separated (structures.manifest.source_key)


def _items(paths, root: str) -> List[ImageItem]:
    root = osp.abspath(root)
    return sorted({ImageItem(osp.abspath(p), source_key(p, root)) for p in paths},
                  key=lambda it: it.key)


def _walk(folder: str) -> Iterator[str]:
    """Image files under ``folder``, following links, skipping hidden names (``.x``, ``._x``)
    as mmengine's listing does and each symlink back to a folder above it (with a warning)."""
    stack = [(folder, (osp.realpath(folder), ))]
    while stack:
        path, ancestors = stack.pop()
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            try:
                is_dir = not entry.name.startswith('.') and entry.is_dir()
            except OSError:
                continue  # a dangling link
            real = osp.realpath(entry.path) if is_dir else None
            if real in ancestors:
                logger.warning('skipping %s: a symlink cycle (it leads back to %s)', entry.path,
                               real)
            elif is_dir:
                stack.append((entry.path, ancestors + (real, )))
            elif not entry.name.startswith('.') and \
                    entry.name.lower().endswith(IMAGE_EXTENSIONS):
                yield entry.path


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
    return _items((osp.join(root, p) for p, _ in read_annotation_list(list_file)), root)


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
    dataset = DATASETS.build(dict(node, pipeline=[], **(
        {'data_root': data_root} if data_root is not None else {})))
    root = getattr(dataset, 'img_prefix', None) or dataset.data_root or ''
    return _items((dataset.get_data_info(i)['img_path'] for i in range(len(dataset))), root)


def list_images(source: str, data_root: Optional[str] = None,
                dataset_key: str = 'train_dataloader.dataset') -> List[ImageItem]:
    """A folder, a ``.py`` MMPretrain config, or a list / annotation file."""
    if not osp.exists(source):
        raise FileNotFoundError(f'source not found: {source!r} (pass an image folder, an image '
                                'list / MMPretrain annotation file, or an MMPretrain config .py)')
    if osp.isdir(source):
        return list_folder(source)
    if source.endswith('.py'):
        return list_config(source, dataset_key, data_root)
    return list_file(source, data_root)


def load_image(path: str) -> Tuple[Optional[object], Optional[str]]:
    """(the RGB PIL image at ``path``, None) or (None, failure reason): a read error is
    transient, a file that does not decode undecodable."""
    import mmcv
    from PIL import Image
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError as exc:
        return None, failure_reason(TRANSIENT, 'missing file', exc)
    except (OSError, MemoryError) as exc:
        return None, failure_reason(TRANSIENT, 'unreadable file', exc)
    try:
        array = mmcv.imfrombytes(data, flag='color', channel_order='rgb', backend='cv2')
    except MemoryError as exc:
        return None, failure_reason(TRANSIENT, 'out of memory', exc)
    except Exception:  # noqa: BLE001  (cv2.error when OpenCV returns nothing)
        array = None
    if array is None:
        exc = ValueError(f'cannot decode image file {path!r}')
        return None, failure_reason(UNDECODABLE, 'undecodable image', exc)
    return Image.fromarray(array), None


def read_batches(gen, todo: Sequence[ImageItem], batch_size: int, analyse: bool):
    """Per batch, ``(pairs, pixels, failed)``: the decoded ``(item, image)`` pairs, their CLIP
    pixels (``gen.preprocess``, with ``analyse``) and the ``(item, reason)`` of the images that
    failed to load. Host work only (the prefetch thread's)."""
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
    while (batch := out.get()) is not None:
        if isinstance(batch, BaseException):
            raise batch
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
