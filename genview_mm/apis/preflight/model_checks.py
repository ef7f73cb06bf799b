"""Preflight checks of the models and weights a config names: the pair scorer's encoder (a local
folder, the Hugging Face cache, or the hub), its PCA file (and that it fits that encoder), and
checkpoints (``load_from``, ``--resume``, ``init_cfg`` Pretrained, the checkpoint under test),
without loading any model.
"""
import os
import os.path as osp
from typing import List, Optional, Tuple

from .checklist import BROKEN, MISSING, NOTE, OFFLINE, OK, Check
from .weights import folder_weights_problem, weights_file_problem

HUB_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin', 'open_clip_pytorch_model.bin',
                    'open_clip_model.safetensors')


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set (the hub is not to be contacted)."""
    return os.environ.get('HF_HUB_OFFLINE', '').lower() in ('1', 'true', 'yes', 'on')


def cached_file(repo: str, filenames) -> Optional[str]:
    """The local path of the first of ``filenames`` found in the Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache
    for name in filenames:
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str):
            return found
    return None


def hub_status(repo: str, filenames, what: str, key: str) -> Check:
    """OK when ``repo`` is cached; else OFFLINE (with how to make it local) unless reachable."""
    found = cached_file(repo, filenames)
    if found:
        return Check(what, OK, f'{repo} (Hugging Face cache: {osp.dirname(found)})')
    fix = [f'hf download {repo}   (on a machine with internet; copy ~/.cache/huggingface '
           'to offline nodes, or set HF_HOME)',
           f'or point the config at a local copy: --cfg-options {key}=/path/to/folder']
    if hub_offline():
        return Check(what, OFFLINE, f'{repo} is not in the Hugging Face cache and '
                     'HF_HUB_OFFLINE=1 forbids downloading it', fix)
    try:
        from huggingface_hub import HfApi
        HfApi().model_info(repo, timeout=5)
    except Exception as exc:  # noqa: BLE001  (any network failure reads the same to the user)
        return Check(what, OFFLINE, f'{repo} is not in the Hugging Face cache and the hub is '
                     f'not reachable ({type(exc).__name__})', fix)
    return Check(what, OK, f'{repo} (not cached; will be downloaded from the hub)')


def damaged_cache(check: Check, repo: str, problem: Optional[str]) -> Check:
    """``check`` turned BROKEN when the cached weights of ``repo`` do not load."""
    if check.status != OK or not problem:
        return check
    return Check(check.what, BROKEN, f'{repo} in the Hugging Face cache: {problem}',
                 [f'hf download {repo} --force-download   (replaces the damaged cached files)'])


def looks_like_path(spec: str) -> bool:
    return spec.startswith(('/', '.', '~')) or osp.exists(spec) or spec.count('/') != 1


def encoder_spec(scorer: dict) -> dict:
    """The scorer's encoder config as a dict with a ``type``."""
    from genview_mm.models.scorers.pair_quality_scorer import OFFICIAL_ENCODER
    enc = scorer.get('encoder') or OFFICIAL_ENCODER
    if isinstance(enc, str):
        return dict(type='CLIPPatchEncoder', pretrained=enc)
    return dict(dict(type='CLIPPatchEncoder'), **enc)


def clip_folder(spec: dict) -> Tuple[Optional[str], Check]:
    """(local folder of a CLIP encoder or None, availability check)."""
    what, key = 'scorer encoder', 'model.scorer.encoder'
    path, sub = spec['pretrained'], spec.get('subfolder')
    if looks_like_path(path):
        folder = osp.join(osp.expanduser(path), sub) if sub else osp.expanduser(path)
        fix = [f'--cfg-options {key}=/path/to/clip-folder (a folder saved by '
               'save_pretrained or downloaded with hf download)']
        if not osp.isfile(osp.join(folder, 'config.json')):
            return None, Check(what, MISSING, f'{folder} is not a model folder (no config.json)',
                               fix)
        problem = folder_weights_problem(folder)
        if problem:
            return folder, Check(what, BROKEN, problem, [
                f'download or save the model into {folder} again (hf download REPO --local-dir '
                f'{folder}, or save_pretrained)', 'or ' + fix[0]])
        return folder, Check(what, OK, folder)
    check = hub_status(path, [f'{sub}/config.json' if sub else 'config.json'], what, key)
    found = cached_file(path, [f'{sub}/config.json' if sub else 'config.json'])
    folder = osp.dirname(found) if found else None
    return folder, damaged_cache(check, path, folder and folder_weights_problem(folder, False))


def timm_status(spec: dict) -> Check:
    """Availability of a timm encoder's weights."""
    what, key = 'scorer encoder', 'model.scorer.encoder.checkpoint_path'
    local = 'or give local weights: --cfg-options model.scorer.encoder.checkpoint_path=FILE'
    name = spec.get('model_name', '?')
    if spec.get('checkpoint_path'):
        path = spec['checkpoint_path']
        if not osp.isfile(path):
            return Check(what, MISSING, f'{name} weights {path} not found',
                         [f'--cfg-options {key}=/path/to/weights'])
        problem = weights_file_problem(path)
        if problem:
            return Check(what, BROKEN, f'{name} weights {problem}',
                         [f'--cfg-options {key}=/path/to/weights (a safetensors or torch file '
                          f'of {name})'])
        return Check(what, OK, f'{name} weights {path}')
    if not spec.get('pretrained', True):
        return Check(what, NOTE, f'{name} with random weights (pretrained=False)')
    from timm.models import get_pretrained_cfg
    cfg = get_pretrained_cfg(name)
    repo = getattr(cfg, 'hf_hub_id', None) if cfg is not None else None
    if not repo:
        return Check(what, NOTE, f'{name}: timm downloads its weights on first use')
    files = [cfg.hf_hub_filename] if getattr(cfg, 'hf_hub_filename', None) else HUB_WEIGHT_FILES
    check = hub_status(repo, files, what, key)
    found = cached_file(repo, files)
    check = damaged_cache(check, repo, found and weights_file_problem(found))
    return check._replace(fix=[*check.fix[:1], local]) if check.fix else check


def expected_encoder(spec: dict, folder: Optional[str]) -> Tuple[str, Optional[int]]:
    """(canonical name, input size) the scorer's encoder will have, from its config."""
    from genview_mm.foreground.encoder_identity import encoder_id
    if spec['type'] == 'TimmPatchEncoder':
        size = spec.get('input_size')
        if size is None:
            from timm.models import get_pretrained_cfg
            cfg = get_pretrained_cfg(spec['model_name'])
            size = cfg.input_size[-1] if cfg is not None else None
        return spec['model_name'], size
    size = None
    if folder:
        import json
        with open(osp.join(folder, 'config.json'), encoding='utf-8') as f:
            config = json.load(f)
        size = (config.get('vision_config') or config).get('image_size')
    return encoder_id(spec['pretrained'], spec.get('subfolder')), size


def pca_fix(spec: dict, path: str) -> List[str]:
    if spec['type'] == 'TimmPatchEncoder':
        name = spec['model_name']
        make = (f'python tools/import_official_pca.py PCA_RESULTS/convnext_base_w_laion2b-s13k-'
                f'b82k-augreg/eigenvecters/pca_vectors.npy --timm-model {name} --input-size '
                f'{spec.get("input_size") or 224} --out {path}   (PCA_RESULTS: '
                'tools/clip_pca/pca_results of the official GenView repository)')
        fit = (f'or fit one: python tools/fit_foreground_pca.py data/imagenet/train --per-folder '
               f'--timm-model {name} --input-size {spec.get("input_size") or 224} --out {path}')
    else:
        make = (f'python tools/fit_foreground_pca.py data/imagenet/train --per-folder '
                f'--encoder {spec["pretrained"]} --out {path}')
        fit = 'or set --cfg-options model.scorer.pca_path=FILE'
    return [make, fit]


def check_pca(path: Optional[str], spec: dict, folder: Optional[str],
              encoder_there: bool = True) -> Check:
    """The scorer's PCA file exists, loads and was made for the scorer's encoder (compared
    only when the encoder is there)."""
    from genview_mm.foreground import ForegroundPCA, ForegroundPCAError
    what = 'scorer PCA file'
    if not path or not osp.isfile(path):
        return Check(what, MISSING, f'{path} not found', pca_fix(spec, path or 'PCA.pth'))
    try:
        pca = ForegroundPCA.load(path)
    except ForegroundPCAError as exc:
        return Check(what, BROKEN, str(exc).split(' Fit one')[0], pca_fix(spec, path))
    if not encoder_there:
        return Check(what, OK, f'{path} ({pca.encoder}; compared with the scorer encoder once '
                     'that is there)')
    name, size = expected_encoder(spec, folder)
    if size is not None and pca.input_size != int(size):
        return Check(what, BROKEN, f'{path} was made for {pca.describe()}; the scorer encoder '
                     f'{name!r} takes {size} px', pca_fix(spec, path))
    if pca.encoder == name:
        return Check(what, OK, f'{path} ({pca.encoder}, {pca.input_size} px)')
    if folder and pca.fingerprint:
        from genview_mm.foreground.encoder_identity import same_fingerprint

        from .weights import folder_fingerprint
        fingerprint = folder_fingerprint(folder)
        if fingerprint is not None and same_fingerprint(pca.fingerprint, fingerprint):
            return Check(what, OK, f'{path} (made for the same weights as {name})')
        if fingerprint is not None:
            return Check(what, BROKEN, f'{path} was made for {pca.encoder!r}, whose weights '
                         f'differ from {name!r}', pca_fix(spec, path))
    return Check(what, BROKEN, f'{path} was made for {pca.encoder!r}, the scorer encoder is '
                 f'{name!r} (weights could not be compared)', pca_fix(spec, path))


def check_scorer(scorer: Optional[dict]) -> List[Check]:
    """The GenView scorer's encoder and PCA file (no check when the model has no scorer)."""
    if not isinstance(scorer, dict):
        return []
    spec = encoder_spec(scorer)
    if spec['type'] == 'TimmPatchEncoder':
        folder, available = None, timm_status(spec)
    else:
        folder, available = clip_folder(spec)
    return [available, check_pca(scorer.get('pca_path'), spec, folder, not available.failing)]
