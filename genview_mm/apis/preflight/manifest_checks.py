"""Preflight check of the GenView manifest, asked of the manifest module: it is there (on
whichever ``mmengine.fileio`` backend the pair transform reads it from), parses, matches a
sample of the dataset's images and the views of those sampled rows exist and are not empty
(:func:`~genview_mm.structures.manifest.probe_manifest`).

Coverage is measured on at most :data:`~.data_checks.SAMPLE` images and the existence of their
views on as many files, of which :data:`DECODED` are decoded as training decodes them; nothing
scans the whole views folder.
"""
import glob
import os.path as osp
from typing import List, Optional, Tuple

from genview_mm.apis.generation.shards import SHARDS_DIR
from genview_mm.structures.manifest import (
    ManifestProbe,
    is_remote,
    manifest_file,
    probe_manifest,
    views_root,
)

from .checklist import BROKEN, MISSING, NOTE, OK, Check
from .data_checks import DEFAULT_TRAIN_IMAGES, image_folder, sample_images
from .fixes import fix_lines

WHAT = 'GenView views manifest'


#: sampled views (of those there and not empty) decoded, as training decodes them
DECODED = 16


def undecodable_views(probe: ManifestProbe, backend_args: Optional[dict] = None,
                      imdecode_backend: str = 'cv2') -> Tuple[List[str], int]:
    """The views that do not decode among up to :data:`DECODED` of the sampled ones that are
    there and not empty (training falls back to the original for each).

    Returns:
        Tuple[List[str], int]: ``'path (why)'`` of each view that does not decode, and how many
        views were decoded.
    """
    import mmcv
    import mmengine.fileio as fileio
    present = [o for o in probe.outputs if o not in probe.missing]
    picked = present[::max(1, -(-len(present) // DECODED))][:DECODED]
    bad = []
    for path in picked:
        try:
            img = mmcv.imfrombytes(fileio.get(path, backend_args=backend_args),
                                   backend=imdecode_backend)
            why = None if img is not None and img.size else 'not an image'
        except Exception as exc:  # noqa: BLE001  (whatever fails, training falls back)
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:80]
        if why:
            bad.append(f'{path} ({why})')
    return bad, len(picked)


def _views_check(probe: ManifestProbe, detail: str,
                 undecodable: Tuple[List[str], int] = ([], 0),
                 images: str = DEFAULT_TRAIN_IMAGES,
                 manifest: Optional[str] = None) -> Optional[Check]:
    """A check that notes sampled views that are missing or do not decode (at most half of
    them together, the decoded share taken for the views there: GenViewPairHook stops a run
    with more) or fails (more: the run would be mostly plain SSL), else None (``images``: the
    dataset's image folder, which the fix's commands read; ``manifest``: the local file they
    write)."""
    bad, decoded = undecodable
    own, n = probe.themselves, len(probe.outputs)
    if own and 2 * len(own) > n:  # training stops at its start (GenViewPairHook)
        return Check(WHAT, BROKEN, f'{detail}; {len(own)} of {n} sampled views are the dataset '
                     f'images themselves or copies of them (e.g. {own[0]}): every pair would be '
                     'two views of the original (plain SSL)', fix_lines('views_themselves'))
    if not probe.missing and not bad:
        return None
    absent = [o for o in probe.missing if o not in probe.empty]
    found = '; '.join(
        ([f'{len(absent)} of {n} sampled views are missing (e.g. {absent[0]})'] if absent else [])
        + ([f'{len(probe.empty)} of {n} sampled views are empty files (0 bytes, e.g. '
            f'{probe.empty[0]}: written on a full disk?)'] if probe.empty else [])
        + ([f'{len(bad)} of {decoded} decoded sampled views are not images (e.g. {bad[0]}: '
            'copied or unpacked only in part?)'] if bad else []))
    usable = (n - len(probe.missing)) * (1 - len(bad) / decoded if decoded else 1)
    if 2 * usable >= n:  # at most half unusable (missing, or there and undecodable): a note
        return Check(WHAT, NOTE, f'{detail}; {found}: those images train on the original')
    every = len(probe.missing) == n or (decoded and len(bad) == decoded)
    root = views_root(probe.path)
    fix = (fix_lines('views_moved', root=root, images=images, manifest=manifest)
           if absent else []) + \
        (fix_lines('views_empty') if probe.empty else []) + \
        (fix_lines('views_undecodable') if bad else [])
    return Check(WHAT, BROKEN, f'{detail}; {found}: training would fall back to the original '
                 f"for {'every image' if every else 'most images'} (plain SSL)", fix)


def unmerged_generation(path: str) -> Optional[Check]:
    """A missing manifest whose folder holds the shard records of a generation run that has not
    merged them (unfinished, or its last worker died): the run is to be finished, or what is
    there merged; None when there is none."""
    out_dir = osp.dirname(osp.abspath(path))
    shards = osp.join(out_dir, SHARDS_DIR)
    done = glob.glob(osp.join(shards, 'shard-*.jsonl'))
    running = glob.glob(osp.join(shards, 'shard-*.journal'))
    if not done and not running:
        return None
    found = f"{len(done)} finished shard record{'s' * (len(done) != 1)}" + (
        f' and {len(running)} in progress' if running else '')
    return Check(WHAT, MISSING, f'{path} not found; {shards} holds {found}: the generation has '
                 'not finished (tools/generate_views.py merges when its last shard is done)',
                 fix_lines('manifest_unmerged', out=out_dir))


def _filtered(probe: ManifestProbe, min_clip_sim: Optional[float]) -> str:
    """What ``min_clip_sim`` took away ('' if nothing)."""
    if not probe.filtered:
        return ''
    return f'{probe.filtered} views filtered by min_clip_sim={min_clip_sim}' + (
        f' ({probe.filtered_hits} sampled images have no other)' if probe.filtered_hits else '')


def check_manifest(manifest: Optional[str], ds: Optional[dict], prob: float = 1.0,
                   source_root: Optional[str] = None, backend_args: Optional[dict] = None,
                   min_clip_sim: Optional[float] = None, imdecode_backend: str = 'cv2',
                   min_coverage: float = 0.0, check_sources: bool = True) -> Check:
    """The GenView manifest exists, parses, matches a sample of the dataset's images and the
    sampled views exist and decode; nothing is needed at ``prob=0``.

    Args:
        manifest (str, optional): the pair transform's ``manifest``.
        ds (dict, optional): the dataset config whose images are sampled.
        prob (float): the pair transform's ``prob``. Defaults to 1.0.
        source_root (str, optional): the pair transform's ``source_root``. Defaults to None.
        backend_args (dict, optional): the pair transform's ``backend_args``. Defaults to None.
        min_clip_sim (float, optional): the pair transform's ``min_clip_sim``: views it filters
            out count as absent, as in training. Defaults to None.
        imdecode_backend (str): the pair transform's ``imdecode_backend``. Defaults to 'cv2'.
        min_coverage (float): GenViewPairHook's ``min_coverage``: a sampled coverage below it
            fails, as the hook stops training then. Defaults to 0.0.
        check_sources (bool): GenViewPairHook's ``check_sources``: sampled images whose rows
            were made from another local picture fail. Defaults to True.

    Returns:
        Check: the manifest's line of the checklist.
    """
    if prob is not None and float(prob) <= 0:
        return Check(WHAT, NOTE, "prob=0: no generated view is used (the pairs are "
                     "MultiView's), so no manifest is read")
    images = image_folder(ds)  # what the commands that make a manifest read
    if not manifest:
        return Check(WHAT, MISSING, 'no manifest set', fix_lines('manifest', images=images))
    path = manifest_file(manifest, backend_args)
    local = None if is_remote(path, backend_args) else path  # where the fixes make one
    remade = 'manifest' if local is None else None  # else made locally: then set it
    missing = Check(WHAT, MISSING, f'{path} not found',
                    fix_lines(remade or 'manifest_missing', images=images, manifest=local))
    if not is_remote(path, backend_args) and not osp.isfile(path):
        return unmerged_generation(path) or missing  # (another backend: asked by reading it)
    try:  # a list that is no text: the dataset's own line says so (no traceback here)
        sample = sample_images(ds) if ds is not None else []
    except (ValueError, OSError):
        sample = []
    try:
        probe = probe_manifest(path, sample, backend_args, source_root,
                               min_clip_sim=min_clip_sim)
    except FileNotFoundError:
        return missing
    except (ValueError, OSError) as exc:
        return Check(WHAT, BROKEN, f'{path}: {exc}',
                     fix_lines(remade or 'manifest_remake', images=images,
                               manifest=local))
    if probe.rows == 0:
        return Check(WHAT, BROKEN, f'{path} is empty',
                     fix_lines(remade or 'manifest_remake', images=images,
                               manifest=local))
    filtered = _filtered(probe, min_clip_sim)
    undecodable = undecodable_views(probe, backend_args, imdecode_backend)
    lower = fix_lines('min_clip_sim', value=min_clip_sim)
    if not sample:
        detail = f'{path} ({probe.rows} rows' + (f'; {filtered}' if filtered else '') + ')'
        if filtered and not probe.outputs:
            return Check(WHAT, BROKEN, f'{detail}: lower it', lower)
        return _views_check(probe, detail, undecodable, images, local) or Check(WHAT, OK, detail)
    detail = (f'{path}: {probe.rows} rows; {probe.hits} of {len(sample)} sampled dataset images '
              'have a view')
    if probe.filtered_hits:
        detail += f'; {filtered}: lower it'
    if probe.failed_hits:
        detail += f'; {probe.failed_hits} have only failed rows (see their reason)'
    if probe.hits == 0:
        if probe.filtered_hits:
            return Check(WHAT, BROKEN, detail, lower)
        if probe.failed_hits:
            return Check(WHAT, BROKEN, detail, fix_lines('manifest_failed'))
        return Check(WHAT, BROKEN, f'{detail} (a dataset image: {sample[0]}; a manifest key: '
                     f'{probe.example})', fix_lines('manifest_other_dataset'))
    if check_sources and probe.others:  # most: GenViewPairHook stops the run
        image, source = probe.others[0]
        found = (f'{detail}; {len(probe.others)} of the {probe.compared} that match rows by file '
                 f'name differ from those rows\' source (e.g. {image} and {source}): they would '
                 "be paired with another picture's view")
        if 2 * len(probe.others) > probe.compared:
            return Check(WHAT, BROKEN, found, fix_lines('manifest_other_pictures'))
        return Check(WHAT, NOTE, f'{found} (re-saved since their views were made?)')
    if isinstance(min_coverage, (int, float)) and probe.hits < min_coverage * len(sample):
        return Check(WHAT, BROKEN, f'{detail}: below min_coverage={min_coverage} of '
                     'GenViewPairHook, which stops training at its start',
                     fix_lines('min_coverage'))
    return _views_check(probe, detail, undecodable, images, local) or \
        Check(WHAT, OK if probe.hits == len(sample) else NOTE, detail)
