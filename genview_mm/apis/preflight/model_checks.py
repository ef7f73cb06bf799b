"""Preflight checks of the pair scorer, asked of its components: the encoder says where its
weights come from (``weights_source`` of its class: a local folder or file, the Hugging Face
cache, the hub), the weights there are checked to load (:mod:`.weights`), and the PCA file says
whether it fits that encoder (:func:`~genview_mm.foreground.encoder_check.fits_encoder`); no
model is loaded.
"""
import inspect
import os.path as osp
import re
from typing import List, Optional, Tuple

from genview_mm.foreground import EncoderIdentity, ForegroundPCA, ForegroundPCAError, encoder_id
from genview_mm.foreground.encoder_check import fits_encoder, timm_weights_option
from genview_mm.foreground.official import OFFICIAL_INPUT_SIZE, OFFICIAL_TIMM
from genview_mm.foreground.pca import is_npy_file
from genview_mm.models.encoders import CLIPPatchEncoder, TimmPatchEncoder
from genview_mm.models.encoders.clip_encoder import load_processor
from genview_mm.models.encoders.clip_folder import clip_folder_identity
from genview_mm.models.encoders.weights_source import WeightsSource, hub_offline
from genview_mm.models.scorers.pair_quality_scorer import OFFICIAL_ENCODER
from genview_mm.models.selfsup import GenViewMixin
from genview_mm.models.weighting import check_weight_rule
from genview_mm.utils.config_keys import type_name, unknown_arguments

from .checklist import BROKEN, MISSING, NOTE, OFFLINE, OK, Check
from .data_checks import DEFAULT_TRAIN_IMAGES
from .fixes import fix_lines
from .weights import folder_weights_problem, weights_file_problem

WHAT = 'scorer encoder'
ENCODERS = {'CLIPPatchEncoder': CLIPPatchEncoder, 'TimmPatchEncoder': TimmPatchEncoder}
#: the setting each encoder cannot do without (a CLIP encoder given a model object aside)
REQUIRED = {'CLIPPatchEncoder': 'pretrained', 'TimmPatchEncoder': 'model_name'}


def encoder_spec(scorer: dict) -> dict:
    """The scorer's encoder config as a dict with a ``type`` (its class name, unscoped)."""
    enc = scorer.get('encoder') or OFFICIAL_ENCODER
    if isinstance(enc, str):
        return dict(type='CLIPPatchEncoder', pretrained=enc)
    return dict(enc, type=type_name(enc) or 'CLIPPatchEncoder')


def hub_check(source: WeightsSource, kind: str, key: str, problem: Optional[str]) -> Check:
    """OK when the repository is cached and loads (BROKEN when it does not); else OFFLINE
    (with how to make it local) unless the hub is reachable."""
    repo = source.repo
    if source.kind == 'cache':
        if problem:
            return Check(WHAT, BROKEN, f'{repo} in the Hugging Face cache: {problem}',
                         fix_lines(f'hub_damaged_{kind}', repo=repo, key=key))
        return Check(WHAT, OK, f'{repo} (Hugging Face cache: {osp.dirname(source.location)})')
    fix = fix_lines(f'hub_{kind}', repo=repo, key=key)
    if hub_offline():
        return Check(WHAT, OFFLINE, f'{repo} is not in the Hugging Face cache and '
                     'HF_HUB_OFFLINE=1 forbids downloading it', fix)
    try:
        from huggingface_hub import HfApi
        HfApi().model_info(repo, timeout=5)
    except Exception as exc:  # noqa: BLE001  (any network failure reads the same to the user)
        return Check(WHAT, OFFLINE, f'{repo} is not in the Hugging Face cache and the hub is '
                     f'not reachable ({type(exc).__name__})', fix)
    return Check(WHAT, OK, f'{repo} (not cached; will be downloaded from the hub)')


def clip_folder(source: WeightsSource) -> Optional[str]:
    """The local folder of a CLIP encoder's source (its folder, or its copy in the cache)."""
    if source.kind == 'cache':
        return osp.dirname(source.location)
    return source.location if source.kind == 'folder' else None


def clip_check(source: WeightsSource, spec: dict) -> Check:
    """Availability of a CLIP encoder's weights at their source, and of a local folder's
    image processor as the encoder loads it."""
    key = 'model.scorer.encoder'
    folder = clip_folder(source)
    if source.kind != 'folder':
        return hub_check(source, 'clip', key,  # offline, the weights must be cached too
                         folder and folder_weights_problem(folder, hub_offline()))
    if not osp.isfile(osp.join(folder, 'config.json')):
        return Check(WHAT, MISSING, f'{folder} is not a model folder (no config.json)',
                     fix_lines('clip_folder', key=key))
    problem = folder_weights_problem(folder)
    if not problem:
        try:  # a damaged preprocessor_config.json: the encoder refuses it
            load_processor(osp.expanduser(spec['pretrained']), spec.get('subfolder'))
        except ValueError as exc:
            problem = str(exc)
    if problem:
        return Check(WHAT, BROKEN, problem, fix_lines('clip_folder_broken', folder=folder,
                                                      key=key))
    return Check(WHAT, OK, folder)


def timm_file(spec: dict, path: str) -> Tuple[Optional[EncoderIdentity], Optional[str]]:
    """(identity, None) of a timm scorer encoder with the local weights file ``path``, read
    as the encoder reads it, or (None, why the encoder refuses the file)."""
    extra = {k: v for k, v in spec.items()  # timm.create_model's other arguments
             if k not in ('type', 'model_name', 'pretrained', 'input_size', 'checkpoint_path')}
    try:
        return TimmPatchEncoder.file_identity(spec.get('model_name', '?'), path, **extra), None
    except ValueError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001  (a damaged file: the unpickler's IndexError, ...)
        return None, weights_file_problem(path) or f'{path}: {type(exc).__name__}: {exc}'


def timm_check(spec: dict, source: WeightsSource, refused: Optional[str] = None) -> Check:
    """Availability of a timm encoder's weights at their source; ``refused``: why the encoder
    refuses a local file (:func:`timm_file`)."""
    key = 'model.scorer.encoder.checkpoint_path'
    name = spec.get('model_name', '?')
    if source.kind == 'file':
        path = source.location
        if not osp.isfile(path):
            return Check(WHAT, MISSING, f'{name} weights {path} not found',
                         fix_lines('timm_weights', key=key))
        problem = weights_file_problem(path) or refused
        if problem:  # a file of another model: the encoder refuses it as it loads
            return Check(WHAT, BROKEN, f'{name} weights {problem}',
                         fix_lines('timm_weights_broken', key=key, name=name))
        return Check(WHAT, OK, f'{name} weights {path}')
    if source.kind == 'random':
        return Check(WHAT, NOTE, f'{name} with random weights (pretrained=False)')
    if source.kind == 'download':
        return Check(WHAT, NOTE, f'{name}: timm downloads its weights on first use')
    return hub_check(source, 'timm', key,
                     source.location and weights_file_problem(source.location))


def expected_identity(spec: dict, source: WeightsSource) -> EncoderIdentity:
    """The scorer encoder's identity as its config tells it (no weights read)."""
    if spec['type'] == 'TimmPatchEncoder':
        return EncoderIdentity(spec['model_name'])
    return EncoderIdentity(encoder_id(spec['pretrained'], spec.get('subfolder')))


def pca_fix(spec: dict, path: str, images: str = DEFAULT_TRAIN_IMAGES,
            size: Optional[int] = None) -> List[str]:
    """How to make a PCA file for the scorer's encoder (fitted on the images in ``images``;
    ``size``: the input side the encoder takes, as its weights source says); with
    ``--overwrite`` where a file is in the way (the tools keep one they did not write)."""
    overwrite = ' --overwrite' if osp.isfile(path) else ''
    if spec['type'] == 'TimmPatchEncoder':  # the official vector: its weights, at its size
        size = size or spec.get('input_size') or OFFICIAL_INPUT_SIZE
        name = spec['model_name']
        official = name.rsplit('/', 1)[-1] == OFFICIAL_TIMM and size == OFFICIAL_INPUT_SIZE
        return fix_lines('pca_timm' if official else 'pca_timm_fit', name=name, path=path,
                         overwrite=overwrite, size=size, images=images,
                         weights=timm_weights_option(spec.get('checkpoint_path')))
    return fix_lines('pca_clip', name=spec['pretrained'], path=path, images=images,
                     overwrite=overwrite)


def other_encoder_fix(spec: dict, path: str, images: str, size: Optional[int]) -> List[str]:
    """:func:`pca_fix` for a sound PCA file of another encoder: the scorer's own made beside
    it, named after its encoder, and the config pointed there (the file in the way is kept: it
    may be the one another config or encoder uses)."""
    name = spec['model_name'] if spec['type'] == 'TimmPatchEncoder' else spec['pretrained']
    slug = re.sub(r'[^A-Za-z0-9._-]+', '-', osp.basename(str(name).rstrip('/\\'))) or 'encoder'
    stem, k = osp.join(osp.dirname(path), slug), 1
    new = f'{stem}.pth'
    while osp.lexists(new) or osp.abspath(new) == osp.abspath(path):  # no file overwritten
        k += 1
        new = f'{stem}-{k}.pth'
    make = pca_fix(spec, new, images, size)
    return make[:1] + fix_lines('pca_beside', path=new, kept=path) + make[1:]


def check_pca(path: Optional[str], spec: dict, source: WeightsSource,
              encoder_there: bool = True, images: str = DEFAULT_TRAIN_IMAGES,
              check_identity: bool = True,
              identity: Optional[EncoderIdentity] = None) -> Check:
    """The scorer's PCA file exists, loads and fits the scorer's encoder (asked of the file,
    only when the encoder is there; ``check_identity=False``, the scorer's
    ``check_encoder=False``: its input size only); the fix fits one on the training images in
    ``images``. ``identity``: the encoder's as its weights give it (a timm file's fingerprint:
    the scorer compares weights, so one PCA file serves the model under any of its tags), else
    :func:`expected_identity`."""
    what, fix = 'scorer PCA file', pca_fix(spec, path or 'PCA.pth', images, source.input_size)
    if not path or not osp.isfile(path):
        return Check(what, MISSING, f'{path} not found', fix)
    try:
        pca = ForegroundPCA.load(path)
        pca.require_scorer_direction()
    except ForegroundPCAError as exc:
        if is_npy_file(path):  # the authors' vector: kept, the file made beside it (an --out
            fix = other_encoder_fix(spec, path, images, source.input_size)  # naming it: refused)
        return Check(what, BROKEN, str(exc).split(' Fit one')[0], fix)
    if not encoder_there:
        return Check(what, OK, f'{path} ({pca.encoder}; compared with the scorer encoder once '
                     'that is there)')
    identity, size = identity or expected_identity(spec, source), source.input_size
    fits, why = fits_encoder(pca, identity, size)
    fix = other_encoder_fix(spec, path, images, size)  # a sound file: not overwritten
    name = identity.name
    if why == 'input size':
        return Check(what, BROKEN, f'{path} was made for {pca.describe()}; the scorer encoder '
                     f'{name!r} takes {size} px', fix)
    tokens = source.tokens  # compared by the scorer as it builds, whatever check_encoder says
    if tokens and (pca.dim, tuple(pca.grid)) != (tokens[0], tuple(tokens[1])):
        return Check(what, BROKEN, f'{path} was made for {pca.describe()}; the scorer encoder '
                     f'{name!r} gives {tokens[0]}-d tokens on a {tokens[1][0]}x{tokens[1][1]} '
                     'grid', fix)
    if fits:
        return Check(what, OK, f'{path} ({pca.encoder}, {pca.input_size} px)')
    if not check_identity:
        return Check(what, OK, f'{path} ({pca.encoder}, {pca.input_size} px; not compared with '
                     f'{name!r}: check_encoder=False)')
    folder = clip_folder(source) if spec['type'] == 'CLIPPatchEncoder' else None
    stored = clip_folder_identity(folder, name) if folder and pca.fingerprint else None
    if stored is not None:
        fits, _ = fits_encoder(pca, stored, size)
        if fits:
            return Check(what, OK, f'{path} (made for the same weights as {name})')
        return Check(what, BROKEN, f'{path} was made for {pca.encoder!r}, whose weights '
                     f'differ from {name!r}', fix)
    return Check(what, BROKEN, f'{path} was made for {pca.encoder!r}, the scorer encoder is '
                 f'{name!r} (weights could not be compared)', fix)


def check_scorer(scorer: Optional[dict], images: str = DEFAULT_TRAIN_IMAGES) -> List[Check]:
    """The GenView scorer's encoder and PCA file (no check when the model has no scorer);
    ``images``: the training image folder (:func:`~.data_checks.train_images`) a PCA file's
    fix fits on."""
    if not isinstance(scorer, dict):
        return []
    spec = encoder_spec(scorer)
    encoder = ENCODERS.get(spec['type'])
    if encoder is None:
        return [Check(WHAT, NOTE, f"{spec['type']}: not checked (not a GenView encoder)")]
    spec = {k: v for k, v in spec.items() if not k.startswith('_')}  # _scope_: the builder's
    args = {k: v for k, v in spec.items() if k != 'type'}
    required, takes = REQUIRED[spec['type']], inspect.signature(encoder.__init__).parameters
    unknown = unknown_arguments(encoder, args)  # none for timm's: they go to create_model
    missing = (not isinstance(args.get(required), str) or not args[required]) and \
        'model' not in args
    if missing or unknown:  # the encoder's build would stop with a TypeError
        why = f'needs {required} (a name), got {args.get(required)!r}' if missing else \
            f'takes no {unknown}'
        facts = dict(key=f'model.scorer.encoder.{required}', kind=spec['type'], keys=unknown,
                     takes=', '.join(k for k in takes if k not in ('self', 'kwargs')))
        return [Check(WHAT, BROKEN, f"model.scorer.encoder ({spec['type']}) {why}",
                      fix_lines('encoder_setting' if missing else 'encoder_unknown', **facts))]
    try:
        source = encoder.weights_source(**args)
    except ValueError as exc:  # timm: a model name it does not know (a misspelt tag); CLIP:
        # a config.json that is not JSON
        fix = ('fix the name: --cfg-options model.scorer.encoder.model_name=NAME', ) if \
            encoder is TimmPatchEncoder else fix_lines(
                'clip_folder_broken', folder=spec.get('pretrained'), key='model.scorer.encoder')
        return [Check(WHAT, BROKEN, str(exc), fix)]
    # a local or cached weights file: the PCA file is compared with its weights, as the scorer
    # compares them (by name alone, one of other weights passed and one of a tag refused)
    local = encoder is TimmPatchEncoder and source.kind in ('file', 'cache') and \
        bool(source.location) and osp.isfile(source.location)
    identity, refused = timm_file(spec, source.location) if local else (None, None)  # read once
    available = clip_check(source, spec) if encoder is CLIPPatchEncoder else \
        timm_check(spec, source, refused)
    return [available, check_pca(scorer.get('pca_path'), spec, source, not available.failing,
                                 images, scorer.get('check_encoder', True) is not False,
                                 identity)]


def check_model(model) -> List[Check]:
    """What building ``model`` would refuse, asked of its class (MMPretrain's registry; none
    for another package's model) before anything loads: a key its constructor does not take,
    and a GenView algorithm's weight rule (``gamma``, ``normalize``); no check when fine."""
    from mmpretrain.registry import MODELS
    kind = model.get('type') if isinstance(model, dict) else None
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    if not isinstance(cls, type):
        return []
    what, unknown = f'model [{cls.__name__}]', unknown_arguments(cls, model)
    if unknown:  # the runner's build would stop with a TypeError
        return [Check(what, BROKEN, f'{cls.__name__} takes no {", ".join(map(repr, unknown))}',
                      fix_lines('model_unknown', keys=', '.join(unknown)))]
    if issubclass(cls, GenViewMixin):
        try:
            check_weight_rule(model.get('gamma', 1.0), model.get('normalize', 'local'))
        except (TypeError, ValueError) as exc:
            return [Check(what, BROKEN, str(exc), fix_lines('weight_rule'))]
    return []
