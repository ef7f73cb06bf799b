"""The one table of what makes each missing or unusable prerequisite: the tool commands and
settings the preflight prints after ``->``.

The checks (and the components they ask) say what is wrong; only this table names ``tools/``
commands and ``--cfg-options`` keys. Each entry is a list of lines formatted with the facts of
the check (:func:`fix_lines`); a command that reads the training images names the config's
own folder (``{images}``, :func:`~.data_checks.train_images`), not ImageNet's default one, and
the released views the ``train_variations`` folder next to it (``{views}``). Paths are
shell-quoted (:data:`PATH_FACTS`), so a line pasted into a shell works for a folder with a space.
"""
import os.path as osp
import re
import shlex
from typing import Dict, List, Optional, Tuple

from genview_mm.structures.manifest import MERGED_NAME
from genview_mm.utils.installation import tool_command

_MANIFEST = (  # made where the config reads it ({manifest}, :func:`fix_lines`)
    'released views: python tools/import_views.py {views} --source-root {images} --out {manifest}',
    'or generate them: python tools/generate_views.py {images} --pca '
    'data/genview/pca/generator.pth --out-dir {views_out}{views_note}')
DEFAULT_MANIFEST = 'data/genview/views/manifest.jsonl'  # the configs' own
_OTHER_DATA = 'or point the config at yours: --cfg-options {key}.data_root=DIR'
_HUB = ('hf download {repo}   (on a machine with internet; copy ~/.cache/huggingface to '
        'offline nodes, or set HF_HOME)')
_FORCE = 'hf download {repo} --force-download   (replaces the damaged cached files)'
_EXTRA_SOURCES = ('(candidates: an ImageNet-21K or LAION image dump, in {dir} or a list file '
                  'with --data-root {dir})')
_TIMM_FIT = ('python tools/fit_foreground_pca.py {images} --per-folder --timm-model {name}'
             '{weights} --input-size {size} --out {path}{overwrite}')
_EXTRA_MAKE = ('python tools/sample_extra_images.py {dir} --imagenet {imagenet}{and_val}{count} '
               '--out {ann}')

#: problem kind -> fix lines (``str.format`` templates over the check's facts)
FIXES: Dict[str, Tuple[str, ...]] = {
    # data
    'imagenet_data': ('put ImageNet-1K under {root} as MMPretrain expects (train/, val/, '
                      'meta/train.txt, meta/val.txt)', _OTHER_DATA),
    'coco_data': ("download COCO 2017 into {root} (annotations/instances_{{train,val}}2017."
                  "json, train2017/, val2017/), MMDetection's layout", _OTHER_DATA),
    'toy_coco': ('python tools/make_toy_coco.py {root}   (the toy COCO set of the demo configs: '
                 'images/ and annotations.json)', _OTHER_DATA),
    'other_data': ('create it (a {kind})', _OTHER_DATA),
    'img_path_prefix': ("name the image folder data_prefix=dict(img_path=DIR) in the config "
                        "(MMPretrain's key; img= is MMDetection's), or --cfg-options "
                        '{key}.data_prefix.img_path=DIR',),
    'coco_annotations': ("download COCO 2017 into {root} (annotations/instances_{{train,val}}"
                         "2017.json, train2017/, val2017/), MMDetection's layout",
                         'or --cfg-options {key}.ann_file=FILE'),
    'toy_coco_annotations': ('python tools/make_toy_coco.py {root}   (the toy COCO set of the '
                             'demo configs: images/ and annotations.json)',
                             'or --cfg-options {key}.ann_file=FILE'),
    'semi_subsets': ('python tools/make_semi_subsets.py --train-list {ann} --simclr 1percent.txt '
                     "10percent.txt --out-dir {dir}   (SimCLR's lists, the paper's subsets)",
                     'or draw class-balanced ones (an approximation): --percent 1 10'),
    'extra_folder': ('put the candidate images under {folder} (a symlink to an ImageNet-21K or '
                     'LAION dump will do), or --cfg-options {key}.data_prefix.img_path=DIR',
                     'then ' + _EXTRA_MAKE),
    'extra_list': (_EXTRA_MAKE + '   ' + _EXTRA_SOURCES, 'or --cfg-options {key}.ann_file=LIST'),
    'extra_too_few': (_EXTRA_MAKE + '   ' + _EXTRA_SOURCES,
                      'or ask for what it lists: --cfg-options expansion.num_extra={found}'),
    'extra_other_folder': (_EXTRA_MAKE + ' --data-root {dir}',
                           'or --cfg-options {key}.data_prefix.img_path=DIR (the --data-root of '
                           'the list)'),
    # the views manifest
    'manifest': _MANIFEST + ('then set genview = dict(manifest=...) in the config or '
                             '--cfg-options genview.manifest=...',),
    'manifest_missing': _MANIFEST + ('or point the config at the manifest you have: '
                                     '--cfg-options genview.manifest=FILE',),
    'manifest_remake': _MANIFEST,
    'manifest_unmerged': ('finish it: run the same tools/generate_views.py command again (it '
                          'skips the images done and merges at the end)',
                          'or train on the views made so far: python tools/merge_manifests.py '
                          '{out}'),
    'manifest_failed': ('run the same tools/generate_views.py command again: it retries the '
                        'transient failures (add --retry-failed to retry every failure) and '
                        'merges at the end',),
    'manifest_other_dataset': ('generate or import views for this dataset, or set '
                               'genview.source_root to the folder the keys are relative to',),
    'manifest_other_pictures': ('generate or import views for this dataset, or set '
                                'genview.source_root to the folder the keys are relative to',
                                'or, if this data is a re-encoded or resized copy of those '
                                'files: check_sources=False of GenViewPairHook (custom_hooks)'),
    'min_coverage': ('generate or import views for the images without one, or lower '
                     'min_coverage of GenViewPairHook (custom_hooks)',),
    'views_moved': ("outputs are relative to the manifest's folder ({root}): move or copy the "
                    'views folder together with its manifest',) + _MANIFEST,
    'min_clip_sim': ('lower it: --cfg-options genview.min_clip_sim=X (below {value}), or '
                     'genview.min_clip_sim=None to keep every view',),
    'views_empty': ('unpack or generate the views again on a disk with room (a full disk '
                    'leaves 0-byte files), then import or merge their manifest again',),
    'views_undecodable': ('copy, unpack or generate the views again (a copy or unpack that '
                          'stopped part-way leaves files that are not images), then import or '
                          'merge their manifest again',),
    'views_themselves': ('import again with the released views folder (the generated views, '
                         'not a copy of the images) first and the ImageNet train folder as '
                         '--source-root (python tools/import_views.py VIEWS_ROOT --source-root '
                         'IMAGES --out ...)',),
    # the scorer's encoder and PCA file
    'clip_folder': ('--cfg-options {key}=/path/to/clip-folder (a folder saved by save_pretrained '
                    'or downloaded with hf download)',),
    'clip_folder_broken': ('download or save the model into {folder} again (hf download REPO '
                           '--local-dir {folder}, or save_pretrained)',
                           'or --cfg-options {key}=/path/to/clip-folder (a folder saved by '
                           'save_pretrained or downloaded with hf download)'),
    'hub_clip': (_HUB, 'or point the config at a local copy: --cfg-options {key}=/path/to/folder'),
    'hub_timm': (_HUB, 'or give local weights: --cfg-options {key}=FILE'),
    'hub_damaged_clip': (_FORCE,),
    'hub_damaged_timm': (_FORCE, 'or give local weights: --cfg-options {key}=FILE'),
    'timm_weights': ('--cfg-options {key}=/path/to/weights',),
    'timm_weights_broken': ('--cfg-options {key}=/path/to/weights (a safetensors or torch file '
                            'of {name})',),
    'pca_timm': ('python tools/import_official_pca.py PCA_RESULTS/convnext_base_w_laion2b-s13k-'
                 'b82k-augreg/eigenvecters/pca_vectors.npy --timm-model {name}{weights} '
                 '--input-size {size} --out {path}{overwrite}   (PCA_RESULTS: '
                 'tools/clip_pca/pca_results of the official GenView repository)',
                 'or fit one: ' + _TIMM_FIT),
    'pca_timm_fit': (_TIMM_FIT,),  # an encoder no official vector was fitted for
    'pca_beside': ('then --cfg-options model.scorer.pca_path={path}   ({kept} is left as it is)',),
    'encoder_setting': ('fix the encoder dict: {kind} takes {takes} ({key} required), e.g. '
                        '--cfg-options {key}=NAME',),
    'encoder_unknown': ('remove {keys} from the encoder dict in the config ({kind} takes '
                        '{takes})',),
    'model_unknown': ('remove {keys} from the model dict in the config, or fix its name (a key of '
                      "the base config's model, kept when a config changes only its type: give "
                      'the model dict _delete_=True and all of its keys)',),
    'weight_rule': ('--cfg-options model.gamma=1.0 model.normalize=local   (the paper\'s rule)',),
    'pca_clip': ('python tools/fit_foreground_pca.py {images} --per-folder --encoder '
                 '{name} --out {path}{overwrite}',
                 'or set --cfg-options model.scorer.pca_path=FILE'),
    # the config itself
    'unknown_type': ('--cfg-options {key}=NAME with a registered name{close}, or fix it in the '
                     'config',
                     "or import the module that registers it: custom_imports = dict(imports=["
                     "'your.module'], allow_failed_imports=False) in the config"),
    'unknown_scope': ('--cfg-options default_scope=NAME{close}: the package whose registries '
                      "the config's types are in ({scopes})",),
    'unknown_op': ('--cfg-options {key}=NAME with an operation of mmcv.ops{close}, or fix it in '
                   'the config',),
    # checkpoints
    'checkpoint': ('python tools/convert_checkpoint.py work_dirs/<pretraining>/epoch_N.pth {path} '
                   '(or an official GenView checkpoint: '
                   'docs/released_views_and_official_artefacts.md)',
                   'or --cfg-options {key}=PATH'),
    'load_from': ("give a checkpoint of this config's whole model (e.g. work_dirs/<config>/"
                  'epoch_N.pth, which tools/train.py writes; a backbone-only file of '
                  "tools/convert_checkpoint.py is the model's init_cfg, not load_from)",
                  'or --cfg-options load_from=PATH, or load_from=None to start from the '
                  "config's own initial weights"),
    'checkpoint_to_test': ('train the model first (tools/train.py CONFIG) or give the path of its '
                           'checkpoint (work_dirs/<config>/epoch_N.pth)',),
    'checkpoint_to_resume': ('pass --resume work_dirs/<config>/epoch_N.pth: a checkpoint that '
                             'tools/train.py wrote for this config (an earlier one if the last '
                             'is damaged)', "or --resume without a path: the one the work dir's "
                             'last_checkpoint names'),
}


#: a tool command of the templates, run as :func:`~genview_mm.utils.installation.tool_command`
#: says from the working folder (``genview-import-views`` outside the checkout's root)
_TOOL_CALL = re.compile(r'python tools/(\w+)\.py')
#: the facts that are paths: shell-quoted in the lines (``shlex.quote``: a plain path stays as is)
PATH_FACTS = ('images', 'views', 'path', 'folder', 'root', 'out', 'dir', 'imagenet', 'ann',
              'manifest', 'views_out')


def released_views(images: str) -> str:
    """Where the released views of a training images folder unpack: its sibling
    ``train_variations`` (``data/imagenet/train`` -> ``data/imagenet/train_variations``)."""
    return osp.join(osp.dirname(osp.normpath(images)), 'train_variations')


def fix_lines(problem: str, **facts) -> List[str]:
    """The fix lines of a ``problem`` of :data:`FIXES`, formatted with ``facts``.

    Args:
        problem (str): a key of :data:`FIXES`.
        **facts: the values its templates name (``key``, ``path``, ``repo``, ...); ``views``
            defaults to the :func:`released_views` of ``images``; ``manifest`` (the config's
            local file, where the commands that make one write it) to :data:`DEFAULT_MANIFEST`. The
            :data:`PATH_FACTS` are shell-quoted.

    Returns:
        List[str]: one line per command or setting; ``python tools/X.py`` where the working
        folder is the checkout's root, else X's console command.
    """
    if isinstance(facts.get('images'), str):
        facts.setdefault('views', released_views(facts['images']))
    manifest = facts.get('manifest')
    if not isinstance(manifest, str):  # none set, or read through another backend
        facts['manifest'] = manifest = DEFAULT_MANIFEST
    out = osp.dirname(manifest) or '.'  # generate_views.py writes OUT/manifest.jsonl
    facts.setdefault('views_out', out)
    facts.setdefault('views_note', '' if osp.basename(manifest) == MERGED_NAME else
                     f'   (then point genview.manifest at '
                     f'{shlex.quote(osp.join(out, MERGED_NAME))})')
    facts = {k: shlex.quote(v) if k in PATH_FACTS and isinstance(v, str) else v
             for k, v in facts.items()}
    return [_TOOL_CALL.sub(lambda m: tool_command(m.group(1)), line).format(**facts)
            for line in FIXES[problem]]


def is_toy_coco(ann: Optional[str]) -> bool:
    """Whether ``ann`` is the annotation file of the toy COCO set the demo configs read
    (tools/make_toy_coco.py writes ``annotations.json``; COCO's are ``instances_*.json``)."""
    return ann is not None and osp.basename(ann) == 'annotations.json'


def dataset_fix_kind(kind: str, ann: Optional[str] = None) -> str:
    """The :data:`FIXES` kind of a missing dataset of config type ``kind`` (``ann``: its
    annotation file, which tells the toy COCO set of the demo configs)."""
    if 'Coco' in kind:
        return 'toy_coco' if is_toy_coco(ann) else 'coco_data'
    return 'imagenet_data' if kind == 'ImageNet' else 'other_data'
