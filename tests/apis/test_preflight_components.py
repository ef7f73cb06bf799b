"""The preflight asks the components that own each rule: the manifest module probes a manifest
(on any mmengine.fileio backend, as training reads it), an encoder class says where its weights
come from, a PCA file says whether it fits an encoder; the fix commands come from one table."""
import ast
import glob
import json
import os
import os.path as osp
import shutil
from contextlib import contextmanager

import mmengine.fileio as fileio
import pytest
from mmengine.fileio.backends import BaseStorageBackend

from genview_mm.apis import load_config
from genview_mm.apis.genview_settings import iter_pair_transforms
from genview_mm.apis.preflight import format_checklist, preflight_passes, run_preflight
from genview_mm.apis.preflight.fixes import FIXES, fix_lines
from genview_mm.apis.preflight.manifest_checks import check_manifest
from genview_mm.foreground import EncoderIdentity, ForegroundPCA, fits_encoder, same_fingerprint
from genview_mm.models.encoders import CLIPPatchEncoder, TimmPatchEncoder
from genview_mm.models.encoders.clip_folder import clip_folder_identity
from genview_mm.structures import manifest as manifest_module
from genview_mm.structures.manifest import ManifestRow, probe_manifest, read_rows, write_manifest
from helpers import ROOT, photos_with_views, save_pca

GENVIEW_TINY = osp.join(ROOT, 'configs', 'demo', 'genview_mocov2_r18_tiny_cpu.py')
PREFLIGHT = osp.join(ROOT, 'genview_mm', 'apis', 'preflight')
BACKEND = 'genview_test_preflight_mirror'


class MirrorBackend(BaseStorageBackend):
    """``mirror://X`` is ``MIRROR/X``; it can only read (no ``exists``), like the HTTP
    backend, and records what was read."""
    root = ''
    fetched: list = []

    def _local(self, path) -> str:
        return osp.join(self.root, str(path).split('mirror://', 1)[1])

    def get(self, filepath) -> bytes:
        self.fetched.append(str(filepath))
        with open(self._local(filepath), 'rb') as f:
            return f.read()

    def get_text(self, filepath, encoding='utf-8') -> str:
        return self.get(filepath).decode(encoding)

    def join_path(self, filepath, *filepaths) -> str:
        return '/'.join([str(filepath).rstrip('/'), *filepaths])

    def get_local_path(self, filepath):
        @contextmanager
        def local():
            self.fetched.append(str(filepath))
            yield self._local(filepath)
        return local()


@pytest.fixture
def mirror(tmp_path):
    """Photos on the local disk, their manifest and views only behind ``mirror://gen/``."""
    data = photos_with_views(str(tmp_path / 'local'), 6, 32)
    MirrorBackend.root = str(tmp_path / 'mirror')
    MirrorBackend.fetched = []
    shutil.copytree(osp.dirname(data.manifest), osp.join(MirrorBackend.root, 'gen'))
    shutil.rmtree(osp.dirname(data.manifest))  # nothing local to fall back on
    fileio.register_backend(BACKEND, MirrorBackend, force=True)
    return data


def test_remote_manifest_and_views_pass_the_preflight(mirror, tiny_clip_path, tiny_scorer_pca):
    """A manifest and views read through a registered backend (the pair transform's
    backend_args) pass, as training reads them; on the old preflight they were MISSING."""
    cfg = load_config(GENVIEW_TINY, {'train_dataloader.dataset.data_root': mirror.src_root,
                                     'genview.manifest': 'mirror://gen/manifest.jsonl',
                                     'model.scorer.encoder': tiny_clip_path,
                                     'model.scorer.pca_path': tiny_scorer_pca})
    for t in iter_pair_transforms(cfg._cfg_dict):
        t['backend_args'] = dict(backend=BACKEND)
    checks = run_preflight(cfg)
    assert preflight_passes(checks), format_checklist(checks, 'cfg', verbose=True)
    check = next(c for c in checks if c.what == 'GenView views manifest')
    assert check.status == 'ok'
    assert check.detail == ('mirror://gen/manifest.jsonl: 7 rows; 6 of 6 sampled dataset images '
                            'have a view')
    assert MirrorBackend.fetched[0] == 'mirror://gen/manifest.jsonl'
    assert sorted(set(MirrorBackend.fetched[1:])) == sorted(  # (read to be there, and decoded)
        f'mirror://gen/images/{osp.splitext(osp.basename(s))[0]}.png' for s in mirror.sources)


def test_remote_missing_view_and_missing_manifest(mirror):
    ds = dict(type='CustomDataset', data_root=mirror.src_root, with_label=False)
    args = dict(backend=BACKEND)
    gone = osp.join(MirrorBackend.root, 'gen', 'images',
                    osp.splitext(osp.basename(mirror.sources[0]))[0] + '.png')
    os.remove(gone)
    check = check_manifest('mirror://gen/manifest.jsonl', ds, backend_args=args)
    assert check.status == 'note'
    assert '1 of 6 sampled views are missing (e.g. mirror://gen/images/' in check.detail
    check = check_manifest('mirror://elsewhere/manifest.jsonl', ds, backend_args=args)
    assert (check.status, check.detail) == ('MISSING',
                                            'mirror://elsewhere/manifest.jsonl not found')
    assert check.fix == fix_lines('manifest', images=mirror.src_root)  # made locally, then
    assert check.fix[0].endswith(' --out data/genview/views/manifest.jsonl')  # pointed at
    assert check.fix[2].startswith('then set genview = dict(manifest=...) in the config')


def rows_for(keys, root='/data/train', status='ok'):
    return [ManifestRow(source=f'{root}/{k}', key=k, output=f'images/{i}.png', status=status)
            for i, k in enumerate(keys)]


def test_probe_manifest_uses_the_one_matching_rule(tmp_path):
    """Keys found as trailing parts of the sampled paths (wherever the data is mounted) or under
    source_root; failed rows give no view; views checked where training resolves them."""
    path = str(tmp_path / 'views' / 'manifest.jsonl')
    keys = [f'n{c}/img_{i}.jpg' for c in range(3) for i in range(50)]
    write_manifest(path, rows_for(keys) + rows_for(['n9/bad.jpg'], status='failed'))
    os.makedirs(tmp_path / 'views' / 'images')
    (tmp_path / 'views' / 'images' / '0.png').write_bytes(b'x')  # 0 bytes would be missing
    sample = ['/mnt/other/train/n0/img_0.jpg', '/mnt/other/train/n2/img_7.jpg',
              '/mnt/other/train/n9/bad.jpg', '/mnt/other/train/n5/none.jpg']
    probe = probe_manifest(path, sample)
    assert (probe.rows, probe.hits) == (151, 2)
    assert probe.outputs == [str(tmp_path / 'views' / 'images' / '0.png'),
                             str(tmp_path / 'views' / 'images' / '107.png')]
    assert probe.missing == probe.outputs[1:]
    # under source_root only the key relative to it counts: 'train/n0/img_0.jpg' is no key
    assert probe_manifest(path, sample, source_root='/mnt/other').hits == 0
    assert probe_manifest(path, sample, source_root='/mnt/other/train').hits == 2
    # nothing sampled: the views of the first rows
    assert len(probe_manifest(path, [], first=5).outputs) == 5
    # outside source_root, matched by its own path (the rows' source), as training matches it:
    # its row was skipped unread (its file name was no candidate's) and the check failed
    write_manifest(path, rows_for(['n0/img_0.jpg', 'n2/img_7.jpg'], root='/mnt/other/train'))
    assert probe_manifest(path, sample[:2], source_root='/data/train').hits == 2
    # one source under two keys (two runs with other --source-root, merged): a KeyError
    rows = rows_for(['train/n0/img_0.jpg'], root='/mnt/other') + rows_for(['n0/img_0.jpg'],
                                                                          root='/mnt/other/train')
    write_manifest(path, rows)
    assert probe_manifest(path, ['/copy/train/n0/img_0.jpg']).hits == 1
    # an image whose own rows failed has no view, whatever another source's rows under its key
    # (the hook's rule; the probe counted it a hit, of another picture)
    write_manifest(path, rows_for(['n0/img_0.jpg'], root='/mnt/other/train', status='failed')
                   + rows_for(['n0/img_0.jpg'], root='/mnt/third/train'))
    probe = probe_manifest(path, ['/mnt/other/train/n0/img_0.jpg'])
    assert (probe.hits, probe.failed_hits, probe.others) == (0, 1, [])


def test_probe_does_not_match_a_shorter_key_when_the_image_own_key_gave_no_view(tmp_path):
    """Matched by trailing path, an image whose own key (n1/x.jpg) has only a failed or a
    filtered row has no view in training (ManifestIndex matches that key); the probe knew only
    the keys of usable rows, fell back to the shorter key x.jpg (another image's view) and
    counted it a hit."""
    from genview_mm.datasets.manifest_index import ManifestIndex
    path = str(tmp_path / 'manifest.jsonl')
    for status, clip_sim in (('failed', None), ('ok', 0.1)):
        own = rows_for(['n1/x.jpg'], status=status)[0]
        own.clip_sim, own.output = clip_sim, own.output if status == 'ok' else None
        write_manifest(path, [own] + rows_for(['x.jpg', 'n2/x.jpg'], root='/data/other'))
        sample = ['/mnt/train/n1/x.jpg', '/mnt/train/n2/x.jpg']
        index = ManifestIndex(path, min_clip_sim=0.5)
        assert [bool(index.lookup(p)) for p in sample] == [False, True]
        probe = probe_manifest(path, sample, min_clip_sim=0.5)
        assert (probe.hits, probe.failed_hits, probe.filtered_hits) == (
            1, int(status == 'failed'), int(status == 'ok')), status


def test_read_rows_across_chunks_skips_only_a_cut_last_line(tmp_path, monkeypatch):
    """The chunked reader gives every row once, skips rows of other file names only when asked,
    names the line of a corrupt row and drops a last line cut short (of a journal: any other
    file is written whole, so there it is a truncated copy, an error)."""
    monkeypatch.setattr(manifest_module, '_CHUNK', 300)  # a few lines per chunk
    path = str(tmp_path / 'manifest.jsonl')
    keys = [f'n{i % 7}/img_{i}.jpg' for i in range(40)]
    write_manifest(path, rows_for(keys))
    assert [r.key for r in read_rows(path)] == keys
    with open(path, 'a') as f:
        f.write('\n{"source": "/x", "key": "cut')  # a kill mid-write, after a blank line
    counts = manifest_module.Counter()
    picked = [r.key for r in read_rows(path, names={'img_3.jpg', 'img_39.jpg'}, counts=counts,
                                       journal=True)]
    assert {'n3/img_3.jpg', 'n4/img_39.jpg'} <= set(picked) and len(picked) < len(keys)
    assert counts['rows'] == 40
    with pytest.raises(ValueError, match=r'manifest.jsonl:42: the last line is cut short'):
        list(read_rows(path, names={'img_3.jpg', 'img_39.jpg'}))
    with open(path) as f:
        lines = f.readlines()
    lines[20] = '{"source": "/x", "key": broken}\n'
    with open(path, 'w') as f:
        f.writelines(lines)
    with pytest.raises(ValueError, match=r'manifest.jsonl:21: corrupt manifest line'):
        list(read_rows(path))
    # a line cut short in the middle (img_20, not a sampled name): the preflight's look at a
    # few images skipped it undecoded and passed, and training failed on it at its start
    lines[20] = '{"source": "/x", "key": "n6/img_20.jpg", "variation": 0, "output": "ima\n'
    with open(path, 'w') as f:
        f.writelines(lines)
    with pytest.raises(ValueError, match=r'manifest.jsonl:21: corrupt manifest line'):
        list(read_rows(path, names={'img_3.jpg'}))
    with pytest.raises(ValueError, match=r'manifest.jsonl:21: corrupt manifest line'):
        manifest_module.probe_manifest(path, [str(tmp_path / 'n3' / 'img_3.jpg')],
                                       source_root=str(tmp_path))
    # a last line that ends its object without a line end was not cut short: a hand edit with
    # single quotes was skipped silently (that image lost its view), and is named now
    write_manifest(path, rows_for(keys))
    with open(path, 'a') as f:
        f.write("{'source': '/x', 'key': 'n4/img_40.jpg', 'variation': 0}")
    with pytest.raises(ValueError, match=r'manifest.jsonl:41: corrupt manifest line'):
        list(read_rows(path))
    write_manifest(path, rows_for(keys))
    with open(path, 'a') as f:  # cut short by a kill: skipped in a journal, as before
        f.write("{'source': '/x', 'key': 'n4/img_40.jpg', 'vari")
    assert len(list(read_rows(path, journal=True))) == 40


def test_a_jsonl_that_is_not_a_manifest_is_named_broken(tmp_path):
    """Lines of another JSONL (an image-caption list) are refused with the line, as a corrupt
    one, in the preflight and in training; it was a TypeError traceback of ManifestRow."""
    from genview_mm.datasets.manifest_index import ManifestIndex
    data = photos_with_views(str(tmp_path), 3, 32)
    path = str(tmp_path / 'captions.jsonl')
    with open(path, 'w') as f:
        f.writelines(json.dumps({'file_name': f'cls/{i}.jpg', 'text': 'a photo'}) + '\n'
                     for i in range(3))
    message = f'{path}:1: not a manifest row (needs source, key)'
    with pytest.raises(ValueError) as exc:
        list(read_rows(path))
    assert str(exc.value) == message
    with pytest.raises(ValueError) as exc:
        ManifestIndex(path)
    assert str(exc.value) == message
    ds = dict(type='CustomDataset', data_root=data.src_root, with_label=False)
    check = check_manifest(path, ds)
    assert (check.status, check.detail) == ('BROKEN', f'{path}: {message}')
    assert check.fix == fix_lines('manifest_remake', images=data.src_root, manifest=path)
    assert check.fix[0].endswith(f'--source-root {data.src_root} --out {path}')  # its images
    assert check.fix[1].endswith(f'--out-dir {tmp_path}   (then point genview.manifest at '
                                 f'{tmp_path / "manifest.jsonl"})')  # it writes manifest.jsonl
    # one such line among rows is named by its number, the rows before it being good
    with open(data.manifest) as f:
        lines = f.readlines()
    lines.insert(2, json.dumps({'file_name': 'cls/0.jpg', 'text': 'a photo'}) + '\n')
    with open(data.manifest, 'w') as f:
        f.writelines(lines)
    with pytest.raises(ValueError, match=r'manifest.jsonl:3: not a manifest row \(needs source'):
        list(read_rows(data.manifest))


def test_pca_file_says_whether_it_fits_an_encoder(tmp_path):
    """fits_encoder takes what a config tells about the encoder (name, input size, a
    fingerprint when the weights could be read) and loads nothing."""
    pca = ForegroundPCA.load(save_pca(str(tmp_path / 'p.pth'), 'org/clip', 32, (8, 8), 32,
                                      arch='clip-vit:a', fingerprint=[1.0, 2.0]))
    assert fits_encoder(pca, EncoderIdentity('org/clip'), 32) == (True, 'same name')
    assert fits_encoder(pca, EncoderIdentity('org/clip'), 64) == (False, 'input size')
    assert fits_encoder(pca, EncoderIdentity('/copy', None, [1.0, 2.0])) == (True,
                                                                              'same weights')
    assert fits_encoder(pca, EncoderIdentity('org/clip', None, [1.0, 3.0])) == (
        False, 'its weights differ')
    assert not fits_encoder(pca, EncoderIdentity('other/clip'))[0]


def test_encoders_say_where_their_weights_are(tmp_path, tiny_clip_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'empty-cache'))
    source = CLIPPatchEncoder.weights_source(pretrained=tiny_clip_path)
    assert (source.kind, source.location, source.input_size) == ('folder', tiny_clip_path, 32)
    assert source.tokens == (32, (8, 8))  # width and grid, from config.json
    assert CLIPPatchEncoder.weights_source(str(tmp_path / 'nothing')).input_size is None
    from huggingface_hub import constants
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(tmp_path / 'empty-cache'))
    hub = CLIPPatchEncoder.weights_source('org/clip-model', subfolder='image_encoder')
    assert (hub.kind, hub.repo, hub.files) == ('hub', 'org/clip-model',
                                               ('image_encoder/config.json',))
    weights = str(tmp_path / 'w.safetensors')
    source = TimmPatchEncoder.weights_source('resnet18', checkpoint_path=weights,
                                             input_size=64)
    assert (source.kind, source.location, source.input_size) == ('file', weights, 64)
    assert TimmPatchEncoder.weights_source('resnet18', pretrained=False).kind == 'random'
    # the token shape, measured on the meta device: none for a channels-last map (swin's
    # (B, h, w, C) read as 7-d tokens on a 7x768 grid) or a size only the load tells
    source = TimmPatchEncoder.weights_source('resnet18', pretrained=False, input_size=64)
    assert source.tokens == (512, (2, 2))
    assert TimmPatchEncoder.weights_source('swin_tiny_patch4_window7_224',
                                           pretrained=False).tokens is None
    unknown = TimmPatchEncoder.weights_source('local-dir:/nowhere/model')  # its config.json's
    assert (unknown.input_size, unknown.tokens) == (None, None)  # size (224 said: BROKEN)


def test_clip_folder_identity_is_what_the_loaded_encoder_reports(tiny_clip_path, tmp_path):
    loaded = CLIPPatchEncoder.from_pretrained(tiny_clip_path).identity()
    read = clip_folder_identity(tiny_clip_path, loaded.name)
    assert (read.name, read.arch) == (loaded.name, loaded.arch)
    assert same_fingerprint(read.fingerprint, loaded.fingerprint)
    # the same weights saved as pytorch_model.bin (an older save): the identity was None, so
    # the preflight compared names and refused a PCA file of these weights the scorer takes
    import torch
    from transformers import CLIPVisionModelWithProjection
    binary = str(tmp_path / 'bin')
    shutil.copytree(tiny_clip_path, binary, ignore=shutil.ignore_patterns('*.safetensors'))
    state = CLIPVisionModelWithProjection.from_pretrained(tiny_clip_path).state_dict()
    torch.save(state, osp.join(binary, 'pytorch_model.bin'))
    read = clip_folder_identity(binary, 'other')
    assert (read.name, read.arch) == ('other', loaded.arch)
    assert same_fingerprint(read.fingerprint, loaded.fingerprint)
    torch.save(state, osp.join(binary, 'pytorch_model.bin'),  # torch's legacy format: no mmap
               _use_new_zipfile_serialization=False)
    assert same_fingerprint(clip_folder_identity(binary, 'other').fingerprint, read.fingerprint)
    assert same_fingerprint(CLIPPatchEncoder(pretrained=binary).identity().fingerprint,
                            read.fingerprint)


def test_fix_commands_come_from_one_table():
    """Only fixes.py names tool commands: no other preflight module, and nothing the preflight
    asks below genview_mm/apis, spells `python tools/`."""
    spelled = []
    for path in sorted(glob.glob(osp.join(PREFLIGHT, '*.py'))):
        if osp.basename(path) != 'fixes.py' and 'python tools/' in open(path).read():
            spelled.append(osp.basename(path))
    asked = ['structures/manifest.py', 'models/encoders/weights_source.py',
             'models/encoders/clip_encoder.py', 'models/encoders/timm_encoder.py']
    for rel in asked:
        source = open(osp.join(ROOT, 'genview_mm', rel)).read()
        probe_part = source.split('def weights_source', 1)[-1].split('\n    def ', 1)[0] \
            if 'encoders/' in rel else source.split('class ManifestProbe', 1)[-1]
        if 'tools/' in probe_part:
            spelled.append(rel)
    assert spelled == []
    assert all(isinstance(v, tuple) and v for v in FIXES.values())
    assert fix_lines('checkpoint', path='a.pth', key='load_from')[1] == \
        'or --cfg-options load_from=PATH'


def test_preflight_imports_genview_mm_at_module_level():
    """No function in the preflight imports genview_mm (or its siblings) inside its body;
    only optional third-party dependencies may be imported late."""
    late = []
    for path in sorted(glob.glob(osp.join(PREFLIGHT, '*.py'))):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (
                            inner.level or (inner.module or '').startswith('genview_mm')):
                        late.append(f'{osp.basename(path)}:{inner.lineno}')
                    if isinstance(inner, ast.Import) and any(
                            a.name.startswith('genview_mm') for a in inner.names):
                        late.append(f'{osp.basename(path)}:{inner.lineno}')
    assert late == []


def test_manifest_json_written_by_others_is_read(tmp_path):
    """Rows written compactly by another tool (no spaces) are still decoded when their file
    name is sampled, and unknown fields are ignored."""
    path = str(tmp_path / 'manifest.jsonl')
    with open(path, 'w') as f:
        for i in range(3):
            f.write(json.dumps(dict(source=f'/d/a/{i}.jpg', key=f'a/{i}.jpg', output=f'{i}.png',
                                    extra='x'), separators=(',', ':')) + '\n')
    assert probe_manifest(path, ['/elsewhere/a/2.jpg']).hits == 1


@pytest.mark.parametrize('name, text', [('preprocessor_config.json', '{"crop_size": '),
                                        ('config.json', '{"hidden_size": ')])
def test_a_clip_folder_with_a_damaged_json_file_is_broken_with_the_folder_fix(
        name, text, tmp_path, tiny_clip_path, tiny_scorer_pca):
    """A preprocessor_config.json the encoder refuses passed the preflight ('OK', then
    training's traceback); a damaged config.json was 'Expecting value: line 2 column 1' with
    timm's 'fix the name' advice."""
    from genview_mm.apis.preflight.model_checks import check_scorer
    folder = tmp_path / 'clip'
    shutil.copytree(tiny_clip_path, folder)
    assert check_scorer(dict(encoder=str(folder), pca_path=tiny_scorer_pca))[0].status == 'ok'
    (folder / name).write_text(text)
    check = check_scorer(dict(encoder=str(folder), pca_path=tiny_scorer_pca))[0]
    assert (check.status, check.detail.split(' ')[0]) == ('BROKEN', str(folder / name))
    assert check.fix == fix_lines('clip_folder_broken', folder=str(folder),
                                  key='model.scorer.encoder')


@pytest.mark.parametrize('check_encoder', [True, False])
def test_a_pca_file_of_another_token_width_is_broken_whatever_check_encoder_says(
        check_encoder, tmp_path, tiny_clip_path):
    """With check_encoder=False the preflight passed a PCA file of 64-d tokens on a 4x4 grid
    for the 32-d, 8x8 tiny CLIP; the scorer refuses it as it builds."""
    from genview_mm.apis.preflight.model_checks import check_scorer
    pca = save_pca(str(tmp_path / 'p.pth'), 'other-encoder', 64, (4, 4), 32)
    check = check_scorer(dict(encoder=tiny_clip_path, pca_path=pca,
                              check_encoder=check_encoder))[1]
    assert (check.status, check.detail) == ('BROKEN', (
        f"{pca} was made for 'other-encoder', 64-d tokens, 4x4 grid at 32 px; the scorer "
        f"encoder {tiny_clip_path!r} gives 32-d tokens on a 8x8 grid"))
    # the fix made the scorer's file over this one (--overwrite): a sound file of another
    # encoder, perhaps the one another config uses, was lost. It now goes beside it.
    new = osp.join(str(tmp_path), osp.basename(tiny_clip_path.rstrip('/')) + '.pth')
    assert check.fix[0].endswith(f'--out {new}') and '--overwrite' not in ' '.join(check.fix)
    assert check.fix[1] == (f'then --cfg-options model.scorer.pca_path={new}   ({pca} is left '
                            'as it is)')
    open(new, 'wb').close()  # a file of that name: not overwritten either
    check = check_scorer(dict(encoder=tiny_clip_path, pca_path=pca,
                              check_encoder=check_encoder))[1]
    assert check.fix[0].endswith(f"--out {new[:-4]}-2.pth") and '--overwrite' not in check.fix[0]


def test_a_timm_weights_file_of_another_model_is_broken(tmp_path):
    """convnext_femto's file for convnext_atto passed ('OK ... weights'); the encoder then
    refused it as it loaded (size mismatch for stem.0.weight). Checked on the meta device."""
    import timm
    import torch

    from genview_mm.apis.preflight.model_checks import check_scorer
    paths = {}
    for name in ('convnext_atto', 'convnext_femto'):
        paths[name] = str(tmp_path / f'{name}.pth')
        torch.save(timm.create_model(name, pretrained=False, num_classes=0).state_dict(),
                   paths[name])
    for name, verdict in (('convnext_atto', 'ok'), ('convnext_femto', 'BROKEN')):
        check = check_scorer(dict(encoder=dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                               input_size=64, checkpoint_path=paths[name])))[0]
        assert check.status == verdict, check
    assert check.detail.startswith(f'convnext_atto weights {paths["convnext_femto"]} does not hold '
                                   'the weights of this timm model: size mismatch for '
                                   'stem.0.weight')


def test_a_timm_pca_file_is_compared_with_the_cached_weights(tmp_path, monkeypatch):
    """A timm encoder whose weights come from the Hugging Face cache was compared with a PCA
    file by name alone: a file fitted on other weights under the same name passed (the scorer
    then refused it), one fitted on these weights under their tag was BROKEN (the scorer takes
    it). The cached file's identity is read as a local file's is."""
    import huggingface_hub.constants
    import timm
    import torch
    from safetensors.torch import save_file
    from timm.models import get_pretrained_cfg

    from genview_mm.apis.preflight.model_checks import check_scorer
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hub'))
    repo = get_pretrained_cfg('convnext_atto').hf_hub_id
    snapshot = tmp_path / 'hub' / ('models--' + repo.replace('/', '--')) / 'snapshots' / ('0' * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / 'refs').mkdir()
    (snapshot.parent.parent / 'refs' / 'main').write_text('0' * 40)
    cached = str(snapshot / 'model.safetensors')
    save_file(timm.create_model('convnext_atto', pretrained=False, num_classes=0).state_dict(),
              cached)
    other = str(tmp_path / 'other.pth')
    torch.manual_seed(1)
    torch.save(timm.create_model('convnext_atto', pretrained=False, num_classes=0).state_dict(),
               other)
    these = TimmPatchEncoder.file_identity('convnext_atto', cached)
    elsewhere = TimmPatchEncoder.file_identity('convnext_atto', other)
    assert these.fingerprint != elsewhere.fingerprint
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    built = TimmPatchEncoder('convnext_atto', input_size=64).identity()  # from the cache
    assert (built.arch, built.fingerprint) == (these.arch, these.fingerprint)
    for name, ident, verdict in ((repo.split('/')[-1], these, 'ok'),  # these, under their tag
                                 ('convnext_atto', elsewhere, 'BROKEN')):  # other weights
        pca = save_pca(str(tmp_path / f'{verdict}.pth'), name, 320, (2, 2), 64, arch=ident.arch,
                       fingerprint=ident.fingerprint)
        checks = check_scorer(dict(encoder=dict(type='TimmPatchEncoder',
                                                model_name='convnext_atto', input_size=64),
                                   pca_path=pca))
        assert checks[0].status == 'ok', checks[0]
        assert checks[-1].status == verdict, checks[-1]


def test_a_timm_pca_file_fits_its_weights_under_another_tag(tmp_path):
    """A PCA file fitted for 'convnext_atto' with a local weights file was 'BROKEN ... weights
    could not be compared' for a config naming 'convnext_atto.d2_in1k' with the same file,
    which the scorer accepts (it compares weights). The file's identity, read on the meta
    device, is the one the built encoder reports."""
    import timm
    import torch

    from genview_mm.apis.preflight.model_checks import check_scorer
    path = str(tmp_path / 'atto.pth')
    torch.save(timm.create_model('convnext_atto', pretrained=False, num_classes=0).state_dict(),
               path)
    built = TimmPatchEncoder('convnext_atto', pretrained=False, checkpoint_path=path,
                             input_size=64).identity()
    assert TimmPatchEncoder.file_identity('convnext_atto', path) == built
    pca = save_pca(str(tmp_path / 'p.pth'), 'convnext_atto', 320, (2, 2), 64, arch=built.arch,
                   fingerprint=built.fingerprint)
    for name, verdict in (('convnext_atto.d2_in1k', 'ok'), ('convnext_femto', 'BROKEN')):
        if name == 'convnext_femto':
            torch.save(timm.create_model(name, pretrained=False, num_classes=0).state_dict(),
                       path)
        check = check_scorer(dict(encoder=dict(type='TimmPatchEncoder', model_name=name,
                                               input_size=64, checkpoint_path=path),
                                  pca_path=pca))[-1]
        assert check.status == verdict, check
