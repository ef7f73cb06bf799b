"""Preflight checks of the data a config names: dataset folders and annotation files (there and
not empty), evaluator annotation files.

Nothing scans a whole dataset: a folder is walked until its first image, an image list is read
and a sample of its images looked up.
"""
import inspect
import json
import os
import os.path as osp
import random
import re
from itertools import islice
from typing import Callable, Iterator, List, Optional, Tuple, Union

from genview_mm.structures.manifest import is_remote
from genview_mm.utils.annotation_list import (
    NotText,
    parse_annotation_line,
    read_annotation_list,
)
from genview_mm.utils.config_keys import shown_type, type_name, unknown_arguments
from genview_mm.utils.image_files import is_hidden, is_image_file

from ..extra_images.image_list import count_list_images
from .checklist import BROKEN, MISSING, NOTE, OK, Check
from .fixes import dataset_fix_kind, fix_lines, is_toy_coco

#: dataset images a manifest's coverage is measured on
SAMPLE = 200

#: the training image folder the fix lines name when the config names none (ImageNet's train/)
DEFAULT_TRAIN_IMAGES = 'data/imagenet/train'


def dataset_fix(kind: str, key: str, ds: Optional[dict] = None) -> List[str]:
    """How to provide a dataset of ``kind`` (the config's dataset type; ``ds``: its config,
    whose ``data_root`` and ``ann_file`` the lines name)."""
    root, ann = (ds.get('data_root'), ds.get('ann_file')) if isinstance(ds, dict) else (None, None)
    if not (isinstance(root, str) and root):  # the folders MMDetection/MMPretrain expect
        root = 'data/coco/' if 'Coco' in kind else 'data/imagenet/' if kind == 'ImageNet' else ''
    ann = ann if isinstance(ann, str) else None
    return fix_lines(dataset_fix_kind(kind, ann), kind=kind, key=key, root=root)


def iter_datasets(node: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset config) of a dataset and the datasets it wraps."""
    if not isinstance(node, dict):
        return
    inner = node.get('dataset')
    if isinstance(inner, dict):
        yield from iter_datasets(inner, key + '.dataset')
    for i, sub in enumerate(node.get('datasets') or []):
        yield from iter_datasets(sub, f'{key}.datasets.{i}')
    if inner is None and not node.get('datasets'):
        yield key, node


def _join(root: str, path: str) -> str:
    return path if not path or osp.isabs(path) or '://' in path else osp.join(root, path)


def dataset_class(ds: dict):
    """The registered class a dataset config builds (its type spelt any way: a name, a
    scoped name, the class), None when unknown here."""
    from mmpretrain.registry import DATASETS
    kind = ds.get('type')
    cls = DATASETS.get(kind) if isinstance(kind, str) else kind
    return cls if isinstance(cls, type) else None


def is_imagenet(ds: dict) -> bool:
    from mmpretrain.datasets import ImageNet
    cls = dataset_class(ds)
    return cls is not None and issubclass(cls, ImageNet)


def dataset_paths(ds: dict) -> Tuple[str, Optional[str], List[str]]:
    """(data_root, annotation file or None, image folders) a dataset config reads."""
    root = ds.get('data_root') or ''
    ann = ds.get('ann_file') or ''
    prefix = ds.get('data_prefix') or ''
    split = ds.get('split') or ''
    if split and is_imagenet(ds):  # mmpretrain's ImageNet defaults
        prefix = prefix or split
        if not ann and osp.isfile(osp.join(root, 'meta', f'{split}.txt')):
            ann = osp.join('meta', f'{split}.txt')
    if isinstance(ann, str):  # MMPretrain expands '~' in these two (not in data_root or a
        ann = osp.expanduser(ann)  # dict data_prefix)
    folders = sorted(prefix.values(), key=lambda f: f != prefix.get('img_path')) if \
        isinstance(prefix, dict) else [osp.expanduser(prefix)]  # MMPretrain's img_path first
    folders = [_join(root, f) for f in folders if f and isinstance(f, str)]
    return root, (_join(root, ann) if ann else None), folders


def image_folder(ds: Optional[dict]) -> str:
    """The image folder a dataset config reads (its first ``data_prefix`` folder, else its
    ``data_root``), :data:`DEFAULT_TRAIN_IMAGES` when it names neither."""
    if not isinstance(ds, dict):
        return DEFAULT_TRAIN_IMAGES
    root, _, folders = dataset_paths(ds)
    folder = folders[0] if folders else root
    return (folder.rstrip('/') or '/') if folder else DEFAULT_TRAIN_IMAGES


def extra_images_key(cfg) -> Optional[str]:
    """The config key of an expansion config's extra set (``cfg.expansion`` is set): the last
    of the train loader's datasets, when there are two or more and it is an unlabelled
    ``CustomDataset`` reading a list (``configs/_base_/expansion.py``), else the one dataset of
    that form; None otherwise. By position first, so that a main set of the same form is not
    taken for it."""
    if not cfg.get('expansion'):
        return None
    loader = cfg.get('train_dataloader') or {}
    sets = list(iter_datasets(loader.get('dataset'), 'train_dataloader.dataset'))
    if len(sets) < 2:
        return None
    def unlabelled_list(ds: dict) -> bool:
        return type_name(ds) == 'CustomDataset' and ds.get('with_label') is False and \
            bool(ds.get('ann_file'))
    if unlabelled_list(sets[-1][1]):
        return sets[-1][0]
    forms = [key for key, ds in sets if unlabelled_list(ds)]  # listed elsewhere: the only one
    return forms[0] if len(forms) == 1 else None


def train_images(cfg) -> str:
    """The image folder of the config's training set (of its first dataset that is not an
    expansion config's extra set), the folder the tools that make views, PCA files and extra
    sets read; :data:`DEFAULT_TRAIN_IMAGES` when the config names none."""
    loader = cfg.get('train_dataloader') or {}
    extra = extra_images_key(cfg)
    for key, ds in iter_datasets(loader.get('dataset'), 'train_dataloader.dataset'):
        if key != extra:
            return image_folder(ds)
    return DEFAULT_TRAIN_IMAGES


def is_empty_file(path: str) -> bool:
    """Nothing but white space in a file's first 64 KiB (0 bytes included)."""
    with open(path, 'rb') as f:
        return not f.read(1 << 16).strip()


def has_images(folder: str, budget: int = 64,
               accept: Callable[[str], bool] = is_image_file) -> Optional[bool]:
    """Whether a folder holds an image file (a name ``accept`` takes, not hidden: MMEngine's
    listing skips ``.x`` files, macOS's ``._x`` among them) at any depth: True at the first one
    found, False when a walk of the whole tree found none, None when ``budget`` folders did not
    settle it."""
    queue = [folder]
    for _ in range(budget):
        if not queue:
            return False
        try:
            with os.scandir(queue.pop(0)) as entries:  # stops at the first image
                for e in entries:
                    if e.is_dir():
                        queue.append(e.path)
                    elif not is_hidden(e.name) and accept(e.name) and e.is_file():
                        return True
        except OSError:
            return None
    return None if queue else False


def skips_missing(ds: dict) -> bool:
    """Whether the dataset trains on without a missing image: a loading step of its pipeline
    has ``ignore_empty=True`` (it gives None, and a dataset outside test mode draws another)."""
    return not ds.get('test_mode') and any(
        isinstance(t, dict) and t.get('ignore_empty') for t in ds.get('pipeline') or ())


def other_backend(args) -> Optional[str]:
    """The storage backend ``backend_args`` name when it is not local files (e.g. petrel, whose
    ``path_mapping`` maps plain local-looking paths onto an object store), else None."""
    backend = args.get('backend', 'local') if isinstance(args, dict) else 'local'
    return None if backend == 'local' else str(backend)


def image_backend(ds: dict) -> Optional[str]:
    """The storage backend, not local files, a dataset reads its images through: its own
    ``backend_args`` (MMDetection's datasets) or its image loading step's; None when local."""
    loads = [t.get('backend_args') for t in ds.get('pipeline') or ()
             if isinstance(t, dict) and 'LoadImage' in type_name(t)]
    return next(filter(None, map(other_backend, [ds.get('backend_args'), *loads])), None)


def mmpretrain_reading(ds: dict) -> Optional[Tuple[str, bool, Tuple[str, ...], int]]:
    """How a dataset of MMPretrain's ``CustomDataset`` family reads its files, asked of its
    class: (type name, with_label, extensions, number of classes or 0 when not fixed); None for
    any other type."""
    from mmpretrain.datasets import CustomDataset, ImageNet
    cls = dataset_class(ds)
    if not (cls is not None and issubclass(cls, CustomDataset)):
        return None
    default = inspect.signature(CustomDataset.__init__).parameters['extensions'].default
    extensions = ds.get('extensions') or getattr(cls, 'IMG_EXTENSIONS', default)
    extensions = tuple(e.lower() for e in extensions)  # as MMPretrain compares them
    with_label = ds.get('with_label', True) is not False and not (
        issubclass(cls, ImageNet) and ds.get('split') == 'test')
    classes = ((ds.get('metainfo') or {}).get('classes') or ds.get('classes')  # the old key
               or cls.METAINFO.get('classes') or ())
    fixed = 0 if isinstance(classes, str) else len(classes)  # a file of names: not read here
    return cls.__name__, with_label, extensions, fixed


def list_form(ann: str, base: str, kind: str, with_label: bool, classes: int = 0,
              owner: Optional[str] = None) -> Optional[str]:
    """The first line of an image list the dataset cannot read: one without a label where
    ``with_label`` splits one off, or whose label is not one of its ``classes`` (when known:
    the dataset's fixed ones, or those of ``owner``, the model's head, where fewer);
    where it reads lines whole, one that names no file as it is (blank, a comment, spaces
    around it: :func:`count_list_images`) or that ends in a label (the first 10 such are
    looked up: a path may end in a number)."""
    if not with_label:
        problem = count_list_images(ann, base)[1]
        if problem:
            return (f'{ann} {problem}, but with_label=False reads each line whole as an image '
                    'path: remove or fix that line')
    looked_up = 0
    with open(ann, encoding='utf-8', errors='replace') as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip('\n\r')
            entry = parse_annotation_line(line)
            shown = f'{ann} line {number} ({line!r})'
            if with_label and entry is None and line.strip():  # '#': a comment of our tools
                entry = parse_annotation_line(line, comments=False)  # as MMPretrain reads it:
                if entry[1] is None or not osp.isfile(_join(base, entry[0])):  # '#tag.jpg 3'
                    return (f"{shown} is a comment, but {kind} reads every line as 'PATH "
                            "LABEL' (MMPretrain's lists have no comments): remove that line")
            if with_label and (entry is None or entry[1] is None):
                return (f"{shown} {'is blank' if entry is None else 'has no label'}, but "
                        f"{kind} (with_label=True) reads 'PATH LABEL' lines: label every line, "
                        'or set with_label=False for a list of paths')
            # a label out of range: a classifier's loss fails where it is drawn (on CUDA, a
            # device assert), maybe hours in
            if with_label and classes and not 0 <= entry[1] < classes:
                return (f'{shown} has label {entry[1]}, but {owner or kind} has {classes} '
                        f'classes (labels 0 to {classes - 1}): fix that line')
            if not with_label and entry is not None and entry[1] is not None:
                if not osp.isfile(_join(base, line)):
                    return (f'{shown} ends in a label, but with_label=False reads each line '
                            'whole as an image path: set with_label=True, or list paths only')
                looked_up += 1
                if looked_up == 10:
                    break
    return None


def folder_form(folder: str, reading: Tuple[str, bool, Tuple[str, ...], int]) -> Optional[str]:
    """What a dataset without a list cannot read in ``folder``: with labels, one folder per
    class (as many as its fixed classes); images of its extensions."""
    kind, with_label, extensions, classes = reading
    class_dirs: List[str] = []
    if with_label:
        try:
            with os.scandir(folder) as entries:
                class_dirs = sorted(e.path for e in entries if e.is_dir())
        except OSError:
            return None
        count = len(class_dirs)
        if count == 0 or (classes and count != classes):
            many = f'its {classes} classes from as many folders' if classes else \
                'one class per folder (with_label=True)'
            fix = (f'the folder of the {classes} class folders' if classes else
                   'put the images in class folders, or set with_label=False')
            return (f'{folder} has {count} class folder{"" if count == 1 else "s"}, but {kind} '
                    f'without an annotation list reads {many}: give the list (ann_file, e.g. '
                    f'meta/train.txt), or {fix}')
    accept = lambda name: name.lower().endswith(extensions)  # noqa: E731
    if with_label:  # MMPretrain reads the class folders only: an image at the top counts not
        found = next((r for r in (has_images(d, accept=accept) for d in class_dirs[:64])
                      if r is not False), False if len(class_dirs) <= 64 else None)
        if found is False:
            return (f'image folder {folder} holds no images {kind} reads '
                    f'({", ".join(extensions)}) in its class folders: put each class\'s '
                    'images in its folder, convert them, or set the dataset\'s extensions')
    elif has_images(folder, accept=accept) is False:
        return (f'image folder {folder} holds no images {kind} reads ({", ".join(extensions)}): '
                'convert them, or set the dataset\'s extensions')
    return None


def starts_with_bom(path: str) -> bool:
    """Whether the file starts with a UTF-8 byte-order mark."""
    with open(path, 'rb') as f:
        return f.read(3) == b'\xef\xbb\xbf'


def dataset_contents(ds: dict, ann: Optional[str], folders: List[str], root: str,
                     labels: Union[bool, int] = False) -> Optional[Tuple[str, str]]:
    """What is wrong with an existing dataset's contents (sampled): ``(status, detail)``, or
    None. ``labels``: the model trains on the labels (a classifier's loss), so each must be
    one of the dataset's fixed classes and, when known (an int ``labels``), one of the head's
    ``num_classes``."""
    if ann is not None and is_empty_file(ann):
        return BROKEN, f'annotation file {ann} is empty'
    reading = mmpretrain_reading(ds)
    is_json = ann is not None and ann.lower().endswith('.json')  # annotations.JSON too
    if reading and ann is not None and not is_json and starts_with_bom(ann):
        skips = skips_missing(ds)  # mmengine's list_from_file keeps it in the first path
        return (NOTE if skips else BROKEN), (
            f'{ann} starts with a byte-order mark (saved as UTF-8 with BOM), which {reading[0]} '
            'reads as part of its first image path' + (': ignore_empty=True skips that image'
                                                       if skips else '') +
            ': save it as plain UTF-8')
    if reading and ann is not None and not is_json:
        # the head's num_classes where it is the tighter bound (labels is an int, not a bool)
        head = labels if type(labels) is int and not 0 < reading[3] <= labels else 0
        problem = list_form(ann, folders[0] if folders else root, *reading[:2],
                            (head or reading[3]) if labels else 0,
                            "the model's head (num_classes)" if head else None)
        if problem:
            return BROKEN, problem
    if reading and ann is None:
        problem = next(filter(None, (folder_form(f, reading) for f in folders or [root] if f)),
                       None)
        if problem:
            return BROKEN, problem
    backend = image_backend(ds)  # images read elsewhere: the local paths need not exist
    if ann is not None and not is_json and backend:
        return NOTE, (f'the images listed in {ann} are read through the {backend} storage '
                      'backend (backend_args): not checked here')
    if ann is not None and not is_json:  # an image list: do its images exist?
        try:
            listed = sample_images(ds, k=20)
        except NotText as exc:
            return BROKEN, str(exc)
        missing = [p for p in listed if not osp.isfile(p)]
        if missing and len(missing) == len(listed):
            return BROKEN, (f'none of {len(listed)} sampled images listed in {ann} exists '
                            f'(e.g. {listed[0]})')
        if missing and skips_missing(ds):
            return NOTE, (f'{len(missing)} of {len(listed)} sampled images listed in {ann} '
                          f'are missing (e.g. {missing[0]}): ignore_empty=True skips them, '
                          'another image is drawn in their place')
        if missing:  # the loader stops at the first one it reads, maybe hours in
            return BROKEN, (f'{len(missing)} of {len(listed)} sampled images listed in {ann} '
                            f'are missing (e.g. {missing[0]}): training stops at the first it '
                            'reads')
        return None
    for folder in folders or [root]:
        if folder and has_images(folder) is False:
            return BROKEN, f'image folder {folder} holds no images'
    # CocoDataset itself: its subclasses LVIS v0.5 and Objects365 v2 rewrite file_name
    if is_json and type_name(ds) == 'CocoDataset' and not backend:
        return json_images(ann, folders[0] if folders else root)
    return None


_FILE_NAME = re.compile(rb'"file_name"\s*:\s*("(?:[^"\\]|\\.)*")')


def json_images(ann: str, folder: str, k: int = 5) -> Optional[Tuple[str, str]]:
    """The first ``k`` images a COCO json names (read from its first 4 MiB, not parsed
    whole: the train json is 450 MB) looked up in ``folder``: BROKEN when none is there."""
    with open(ann, 'rb') as f:
        head = f.read(4 << 20)
    try:
        names = [json.loads(m.group(1)) for m in islice(_FILE_NAME.finditer(head), k)]
    except ValueError:
        return None
    paths = [osp.join(folder, n) for n in names if isinstance(n, str)]
    if paths and not any(osp.isfile(p) for p in paths):
        return BROKEN, (f'none of the first {len(paths)} images named in {ann} is in {folder} '
                        f'(e.g. {paths[0]}): point data_prefix.img at the folder its '
                        'file_names are relative to')
    return None


def check_dataset(key: str, ds: dict, labels: Union[bool, int] = False) -> List[Check]:
    """The dataset's root, annotation file and image folders exist and are not empty (an
    image list's sampled images exist); ``labels``: the model trains on them
    (:func:`dataset_contents`)."""
    kind = shown_type(ds, 'dataset')
    split = f" ({ds['split']})" if ds.get('split') else ''
    what = f'{kind}{split} data [{key}]'
    unknown = unknown_arguments(dataset_class(ds), ds)
    if unknown:  # a key of an inherited dataset of another type: a TypeError at its build
        return [Check(what, BROKEN, f'{kind} takes no {", ".join(map(repr, unknown))} (a key of '
                      "the base config's dataset, kept when a config changes only its type?): "
                      "give the dataset dict _delete_=True and all of its keys, its pipeline "
                      'too', ())]
    prefix = ds.get('data_prefix')
    if isinstance(prefix, dict) and 'img_path' not in prefix and mmpretrain_reading(ds):
        # MMDetection's spelling (img=...): MMPretrain's build stops with KeyError: 'img_path'
        held = f'has only {", ".join(map(repr, prefix))}' if prefix else 'is empty'
        return [Check(what, BROKEN, f'{kind} reads its images from data_prefix[\'img_path\'], '
                      f'but its data_prefix {held}',
                      fix_lines('img_path_prefix', key=key))]
    root, ann, folders = dataset_paths(ds)
    backend = other_backend(ds.get('backend_args'))  # MMDetection's: its files all read there
    if backend:
        return [Check(what, NOTE, f'{ann or root} is read through the {backend} storage backend '
                      '(backend_args): not checked here')]
    remote = next((p for p in [root, ann, *folders] if p and '://' in p), None)
    if remote:  # read through the dataset's backend_args; its local parts must still be there
        gone = next((p for p in [root, ann, *folders] if p and '://' not in p
                     and not osp.exists(p)), None)
        if gone:
            return [Check(what, MISSING, f'{gone} not found', dataset_fix(kind, key, ds))]
        return [Check(what, NOTE, f'{remote} is on another storage backend: not checked here')]
    listed = ann is not None and bool(image_backend(ds))  # only the list is a local file
    if root and not osp.isdir(root) and not (listed and osp.isfile(ann)):
        return [Check(what, MISSING, f'{root} not found', dataset_fix(kind, key, ds))]
    checks = []
    if ann is not None and not osp.isfile(ann):
        meta = osp.dirname(ann)  # the subsets go beside the train list they are drawn from
        fix = fix_lines('semi_subsets', ann=osp.join(meta, 'train.txt'), dir=meta) \
            if 'percent' in osp.basename(ann) else dataset_fix(kind, key, ds)
        checks.append(Check(what, BROKEN, f'annotation file {ann} is a folder, not a list of '
                            'images (ann_file names the list; the folder of the images is '
                            'data_prefix)', fix) if osp.isdir(ann) else
                      Check(what, MISSING, f'annotation file {ann} not found', fix))
    missing = [f for f in folders if not listed and not osp.isdir(f)]
    if missing:
        checks.append(Check(what, MISSING, f'image folder {missing[0]} not found',
                            dataset_fix(kind, key, ds)))
    if not checks:
        problem = dataset_contents(ds, ann, folders, root, labels)
        if problem:
            status, detail = problem
            checks.append(Check(what, status, detail,
                                dataset_fix(kind, key, ds) if status == BROKEN else ()))
    return checks or [Check(what, OK, ann or (folders[0] if folders else root))]


def check_evaluator(key: str, evaluator) -> List[Check]:
    """Annotation files an evaluator reads (e.g. CocoMetric's ``ann_file``)."""
    items = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    checks = []
    for ev in items:
        ann = ev.get('ann_file') if isinstance(ev, dict) else None
        if ann and is_remote(ann, ev.get('backend_args')):  # read through
            checks.append(Check(f'{ev.get("type")} annotations [{key}]', NOTE,  # backend_args
                                f'{ann} is on another storage backend: not checked here'))
        elif ann:
            status = OK if osp.isfile(ann) else MISSING
            detail = ann if status == OK else f'{ann} not found'
            if status == OK and is_empty_file(ann):
                status, detail = BROKEN, f'{ann} is empty'
            toy = is_toy_coco(ann)
            fix = fix_lines('toy_coco_annotations' if toy else 'coco_annotations', key=key,
                            root=(osp.dirname(ann if toy else osp.dirname(ann)) or '.') + '/')
            checks.append(Check(f'{ev.get("type")} annotations [{key}]', status, detail,
                                fix if status != OK else ()))
    return checks


def sample_images(ds: dict, k: int = SAMPLE, seed: int = 0) -> List[str]:
    """Up to ``k`` image paths of a dataset, read from its list file or from a few of its
    folders (never a full scan)."""
    root, ann, folders = dataset_paths(ds)
    rng = random.Random(seed)
    if ann and osp.isfile(ann):
        names = [name for name, _ in read_annotation_list(ann)]
        base = folders[0] if folders else root
        return [_join(base, n) for n in rng.sample(names, min(k, len(names)))]
    paths: List[str] = []
    for folder in folders or [root]:
        if not osp.isdir(folder):
            continue
        images, subdirs = _scan(folder)
        paths += images
        for sub in rng.sample(subdirs, min(len(subdirs), 20)):
            for _ in range(8):  # down a random path until a folder holds images (root/x/y/)
                images, below = _scan(sub)
                if images or not below:
                    break
                sub = rng.choice(below)
            paths += images
    return rng.sample(paths, min(k, len(paths)))


def _scan(folder: str) -> Tuple[List[str], List[str]]:
    """The image files (not hidden ones, as :func:`has_images`) and the subfolders of
    ``folder``, sorted (none if it cannot be read)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return [], []
    return ([e.path for e in entries if not is_hidden(e.name) and e.is_file() and
             is_image_file(e.name)],
            [e.path for e in entries if e.is_dir()])
