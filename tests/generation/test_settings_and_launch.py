"""The generation settings file (what a rerun must match; a model recorded by its weights),
what --overwrite may delete, and the launch modes read from the environment."""
import json
import os
import os.path as osp
import shutil
import sys

import pytest

from genview_mm.apis.generation.job import SettingsMismatch
from genview_mm.apis.generation.settings import (
    SETTINGS_NAME,
    check_settings,
    clear_outputs,
    settings_diff,
    write_settings,
)
from genview_mm.foreground.encoder_identity import model_fingerprint
from genview_mm.generation import AdaptiveNoiseGenerator
from genview_mm.generation.pipeline_loader import native_size
from genview_mm.structures.manifest import ManifestRow, write_manifest
from genview_mm.utils.dist import launch_from, resolve_device
from helpers import run_cmd, save_tiny_unclip


def base():
    return dict(format=2, pretrained='/m/unclip', pca_sha256='ab', dtype='float32', steps=20,
                guidance=10.0, seed=0, prompt='', ext='.jpg', quality=95, num_variations=1)


def test_settings_diff_lists_old_and_new():
    new = dict(base(), steps=30, pca_sha256='cd')
    assert settings_diff(base(), new) == ["pca_sha256: 'ab' -> 'cd'", 'steps: 20 -> 30']
    assert settings_diff(base(), base()) == []
    assert settings_diff({}, {'seed': 1}) == ["seed: '(not recorded)' -> 1"]
    # a record from before --output existed was made through PIL
    assert settings_diff(base(), dict(base(), output='pil')) == []
    assert settings_diff(base(), dict(base(), output='tensor')) == ["output: 'pil' -> 'tensor'"]


def test_output_auto_follows_the_device(tiny_unclip_pca):
    """The generator's ``output='auto'`` (the tool's default): tensors on CUDA, PIL elsewhere;
    nothing loads to decide it."""
    def built(output, device):
        return AdaptiveNoiseGenerator(tiny_unclip_pca, pretrained='/absent', device=device,
                                      output=output).output
    assert built('auto', 'cuda:1') == 'tensor' and built('auto', 'cpu') == 'pil'
    assert built('pil', 'cuda') == 'pil' and built('tensor', 'cpu') == 'tensor'
    with pytest.raises(ValueError, match="output must be 'pil', 'tensor' or 'auto', got 'gpu'"):
        built('gpu', 'cpu')


def test_every_generator_setting_is_recorded_or_changes_no_pixels(tiny_unclip_pca):
    """The generator owns the list of its settings that decide its pixels (pixel_settings,
    which the settings record holds): a new constructor argument must join it or the list of
    those that change no pixels beyond rounding (speed, memory, where things run)."""
    import inspect
    params = set(inspect.signature(AdaptiveNoiseGenerator.__init__).parameters) - {'self'}
    recorded_as = dict(torch_dtype='dtype', num_inference_steps='steps', base_seed='seed',
                       guidance_scale='guidance', height='gen_size',
                       width='gen_size')  # the tool sets width = height = --gen-size
    elsewhere = {'pca', 'pretrained'}  # the record: pca_sha256, the weights' fingerprint
    no_pixels = {'pipeline', 'device', 'max_batch_size', 'check_encoder', 'name',
                 'cache_prompt_embeds', 'channels_last', 'fuse_qkv', 'compile', 'compile_mode',
                 'compile_backend', 'host_threads'}
    gen = AdaptiveNoiseGenerator(tiny_unclip_pca, pretrained='/absent', device='cpu')
    settings = gen.pixel_settings()
    assert {recorded_as.get(p, p) for p in params - elsewhere - no_pixels} == set(settings)
    assert settings['dtype'] == 'float32' and settings['output'] == 'pil'  # resolved for cpu
    assert json.loads(json.dumps(settings)) == settings  # JSON types


def test_write_then_check_and_refuse(tmp_path):
    out = str(tmp_path / 'out')
    check_settings(out, base())  # nothing there yet
    write_settings(out, base())
    assert json.load(open(osp.join(out, SETTINGS_NAME))) == base()
    write_settings(out, base())  # a second rank with the same settings
    assert [f for f in os.listdir(out) if 'partial' in f] == []
    with pytest.raises(SettingsMismatch) as err:
        write_settings(out, dict(base(), seed=1))
    msg = str(err.value)
    assert 'seed: 0 -> 1' in msg and '--overwrite' in msg and 'new --out-dir' in msg
    assert json.load(open(osp.join(out, SETTINGS_NAME))) == base()  # the first one stays


def test_a_damaged_settings_record_is_refused_unless_overwrite(tmp_path):
    """An empty or damaged record (a power loss after it was created): one clear refusal, and
    --overwrite may clear what the shard records list (a JSON error traceback on main)."""
    out = str(tmp_path / 'out')
    os.makedirs(out)
    for text in ('', '{"format": 3, "st', '[1, 2]'):
        open(osp.join(out, SETTINGS_NAME), 'w').write(text)
        with pytest.raises(SettingsMismatch) as err:
            check_settings(out, base())
        assert str(err.value).startswith(f'{out} holds views generated with other settings '
                                         f'({osp.join(out, SETTINGS_NAME)}, empty or damaged)')
        assert "seed: '(not recorded)' -> 0" in str(err.value)
        assert check_settings(out, base(), overwrite=True) is True
    assert clear_outputs(out) == 1 and os.listdir(out) == []


def test_views_without_settings_file_are_refused_and_never_cleared(tmp_path):
    """A folder of images and manifests this tool did not record: refused, with or without
    --overwrite, and clear_outputs deletes nothing there (on main it deleted images/)."""
    out = tmp_path / 'out'
    (out / 'images' / 'a').mkdir(parents=True)
    (out / 'images' / 'a' / 'x.jpg').write_bytes(b'x')
    (out / 'manifest.jsonl').write_text('{"mine": 1}\n')
    (out / 'keep.txt').write_text('mine')
    for overwrite in (False, True):
        with pytest.raises(SettingsMismatch, match='no generation_settings.json') as err:
            check_settings(str(out), base(), overwrite)
        assert '--overwrite will not delete' in str(err.value)
    with pytest.raises(SettingsMismatch, match='deletes only what this tool recorded'):
        clear_outputs(str(out))
    assert sorted(os.listdir(out)) == ['images', 'keep.txt', 'manifest.jsonl']
    assert (out / 'images' / 'a' / 'x.jpg').read_bytes() == b'x'


def test_overwrite_deletes_only_recorded_files_inside_out_dir(tmp_path):
    out = tmp_path / 'out'
    write_settings(str(out), base())
    (out / 'images' / 'a').mkdir(parents=True)
    for name in ('v1.jpg', 'v2.jpg', 'user.jpg'):
        (out / 'images' / 'a' / name).write_bytes(b'x')
    outside = tmp_path / 'outside.jpg'
    outside.write_bytes(b'precious')
    rows = [ManifestRow('/s/1', '1', 0, 'images/a/v1.jpg'),
            ManifestRow('/s/2', '2', 0, 'images/a/v2.jpg'),
            ManifestRow('/s/3', '3', 0, '../outside.jpg'),  # a record climbing out: ignored
            ManifestRow('/s/4', '4', 0, str(outside))]  # absolute: ignored
    write_manifest(str(out / 'shards' / 'shard-00000.jsonl'), rows)
    (out / 'shards' / 'shard-00001.journal').write_text(rows[0].to_line())
    (out / 'manifest.jsonl').write_text(''.join(r.to_line() for r in rows))
    assert clear_outputs(str(out)) == 6  # 2 views, record, journal, manifest, settings
    assert outside.read_bytes() == b'precious'
    assert os.listdir(out / 'images' / 'a') == ['user.jpg']
    assert sorted(os.listdir(out)) == ['images']


def test_overwrite_leaves_a_linked_images_folder_and_its_target(tmp_path):
    """OUT/images a link to a folder elsewhere: the clear walked the target, removed its empty
    folders (outside --out-dir) and ended in 'Not a directory' on the link, with the records
    already deleted."""
    out, target = tmp_path / 'out', tmp_path / 'elsewhere'
    (target / 'empty_class').mkdir(parents=True)
    (target / 'a').mkdir()
    (target / 'a' / 'v1.jpg').write_bytes(b'x')
    write_settings(str(out), base())
    os.symlink(str(target), out / 'images')
    write_manifest(str(out / 'shards' / 'shard-00000.jsonl'),
                   [ManifestRow('/s/1', '1', 0, 'images/a/v1.jpg')])
    assert clear_outputs(str(out)) == 2  # the record and the settings (the view is elsewhere)
    assert osp.islink(out / 'images') and sorted(os.listdir(target)) == ['a', 'empty_class']
    assert os.listdir(target / 'a') == ['v1.jpg'] and sorted(os.listdir(out)) == ['images']


def test_an_overwrite_cut_short_can_be_rerun(tmp_path, monkeypatch):
    """A clear killed (or failing) after some deletions keeps the settings record, so the
    next --overwrite clears the rest; deleted first (it sorts before images/), it left views
    and records that no run would touch again ('no generation_settings.json')."""
    from genview_mm.apis.generation import settings as settings_module
    out = tmp_path / 'out'
    write_settings(str(out), base())
    (out / 'images').mkdir()
    rows = [ManifestRow(f'/s/{i}', str(i), 0, f'images/v{i}.jpg') for i in range(3)]
    for r in rows:
        (out / r.output).write_bytes(b'x')
    write_manifest(str(out / 'shards' / 'shard-00000.jsonl'), rows)
    real_remove, removed = os.remove, []

    def remove(path):
        if len(removed) == 2:
            raise OSError(5, 'Input/output error')  # or a kill -9 here
        removed.append(path)
        real_remove(path)
    monkeypatch.setattr(settings_module.os, 'remove', remove)
    with pytest.raises(OSError):
        clear_outputs(str(out))
    monkeypatch.undo()
    assert check_settings(str(out), dict(base(), steps=30), overwrite=True) is True
    assert clear_outputs(str(out)) == 3  # a view, the record, the settings record
    assert sorted(os.listdir(out)) == []


def test_model_recorded_by_its_weights_not_its_path(tmp_path, tiny_unclip_path):
    moved = shutil.copytree(tiny_unclip_path, str(tmp_path / 'elsewhere' / 'unclip'))
    other = save_tiny_unclip(str(tmp_path / 'other'), seed=1)
    first = model_fingerprint(tiny_unclip_path)
    assert first.startswith('weights:') and model_fingerprint(moved) == first
    assert model_fingerprint(other) != first
    assert model_fingerprint('owner/repo') == 'owner/repo'  # a hub id as it is
    with open(osp.join(moved, 'scheduler', 'scheduler_config.json')) as f:
        cfg = json.load(f)
    cfg['num_train_timesteps'] = 999
    with open(osp.join(moved, 'scheduler', 'scheduler_config.json'), 'w') as f:
        json.dump(cfg, f)
    assert model_fingerprint(moved) != first  # a config that changes the views counts too


def test_a_pipeline_is_fingerprinted_by_what_it_loads(tmp_path, tiny_unclip_path):
    """A full-repository download holds more than the pipeline loads (a README, the single-file
    .ckpt, .bin copies of safetensors weights, fp16 variants, files added later): the
    fingerprint counted all of them, so a resume after a later download was refused, and each
    start hashed the multi-GB .ckpt in full. Now: model_index.json and the components it names,
    of their weights the files loaded without a variant (safetensors, else .bin)."""
    first = model_fingerprint(tiny_unclip_path)
    assert model_fingerprint(tiny_unclip_path, whole_folder=True) == first  # save_pretrained's
    full = shutil.copytree(tiny_unclip_path, str(tmp_path / 'full'))
    big = os.urandom(1 << 20) * 2  # over the size hashed in one read
    unet = osp.join(full, 'unet', 'diffusion_pytorch_model')
    shutil.copy(unet + '.safetensors', unet + '.fp16.safetensors')  # a variant: not loaded
    for rel, data in (('README.md', b'# unclip'), ('sd21-unclip-h.ckpt', big),
                      ('unet/diffusion_pytorch_model.bin', big), ('notes/todo.txt', b'x'),
                      ('vae/diffusion_pytorch_model.safetensors.index.fp16.json', b'{}')):
        os.makedirs(osp.dirname(osp.join(full, rel)), exist_ok=True)
        with open(osp.join(full, rel), 'wb') as f:
            f.write(data)
    read = []
    import genview_mm.foreground.encoder_identity as identity
    real = identity.file_sha256
    identity.file_sha256 = lambda path: read.append(path) or real(path)
    try:
        assert model_fingerprint(full) == first and read == []  # nothing big read
        assert model_fingerprint(full, whole_folder=True) != first and len(read) == 2
    finally:
        identity.file_sha256 = real
    os.remove(unet + '.safetensors')
    without = model_fingerprint(full)
    assert without != first  # the .bin is what loads now (the fp16 variant is not): it counts
    with open(unet + '.bin', 'wb') as f:
        f.write(big[::-1])
    assert model_fingerprint(full) != without  # other weights in it: another fingerprint
    shutil.rmtree(full)
    full = shutil.copytree(tiny_unclip_path, str(tmp_path / 'full'))
    with open(osp.join(full, 'vae', 'config.json')) as f:
        cfg = json.load(f)
    with open(osp.join(full, 'vae', 'config.json'), 'w') as f:
        json.dump(dict(cfg, scaling_factor=0.5), f)
    assert model_fingerprint(full) != first  # a component's config counts


def test_an_accepted_record_is_replaced_only_if_unchanged_since_its_check(tmp_path,
                                                                         monkeypatch):
    """A started run puts its settings in place of a record that names its model otherwise
    (an older fingerprint, a hub id), but not over one another launch wrote after the check."""
    import genview_mm.apis.generation.settings as settings_module
    out = tmp_path / 'out'
    out.mkdir()
    record, new = out / SETTINGS_NAME, dict(base(), pretrained='weights:new')
    record.write_text(json.dumps(dict(base(), pretrained='weights:old')))

    def accepted_then_replaced(out_dir, settings, overwrite=False, pretrained=None):
        record.write_text(json.dumps(dict(new, steps=50)))  # an --overwrite launch, meanwhile
        return False

    monkeypatch.setattr(settings_module, 'check_settings', accepted_then_replaced)
    write_settings(str(out), new)
    assert json.loads(record.read_text()) == dict(new, steps=50)  # left to the other launch
    record.write_text(json.dumps(dict(base(), pretrained='weights:old')))
    monkeypatch.setattr(settings_module, 'check_settings', lambda *a, **k: False)  # accepted
    write_settings(str(out), new)
    assert json.loads(record.read_text()) == new
    write_settings(str(out), dict(base(), pretrained='owner/repo'))  # a hub id: never written
    assert json.loads(record.read_text()) == new


def test_native_size_read_from_the_configs(tmp_path, tiny_unclip_path):
    """What diffusers generates at when no size is given (UNet sample size x VAE factor): an
    explicit --gen-size of that size is recorded as unset, so it resumes a run that left it
    unset."""
    assert native_size(tiny_unclip_path) == 16 * 2  # sample_size 16, two VAE blocks
    moved = shutil.copytree(tiny_unclip_path, str(tmp_path / 'unclip'))
    with open(osp.join(moved, 'vae', 'config.json')) as f:
        cfg = json.load(f)
    cfg['block_out_channels'] = [8, 8, 8, 8]  # Stable unCLIP 2.1's VAE: 96 x 8 = 768
    with open(osp.join(moved, 'vae', 'config.json'), 'w') as f:
        json.dump(cfg, f)
    assert native_size(moved) == 128
    assert native_size('owner/repo') is None and native_size(str(tmp_path)) is None


def test_launch_modes():
    assert launch_from(env={}) == (0, 1, 0, 'single')
    # a job-array task: fixed RANK/WORLD_SIZE -> a separate task on GPU 0
    assert launch_from(env={'RANK': '3', 'WORLD_SIZE': '4'}) == (3, 4, 0, 'environment')
    torchrun = {'RANK': '3', 'WORLD_SIZE': '4', 'LOCAL_RANK': '1', 'MASTER_ADDR': 'h',
                'TORCHELASTIC_RUN_ID': 'x'}
    assert launch_from(env=torchrun) == (3, 4, 1, 'torchrun')
    # MASTER_ADDR without torchrun's agent: a separate task (on main: a 30-minute barrier)
    no_agent = dict(torchrun, TORCHELASTIC_RUN_ID='')
    del no_agent['TORCHELASTIC_RUN_ID']
    # a LOCAL_RANK set by hand (srun with one task per GPU) is this process's GPU; it was 0,
    # every process of the node on GPU 0
    assert launch_from(env=no_agent) == (3, 4, 1, 'environment')
    with pytest.raises(ValueError, match=r'LOCAL_RANK=-1 in the environment: need >= 0'):
        launch_from(env=dict(no_agent, LOCAL_RANK='-1'))
    # a LOCAL_RANK without RANK/WORLD_SIZE (left in the shell) is no launcher's: GPU 0, as
    # before (it picked cuda:LOCAL_RANK, an error on a node with fewer GPUs)
    assert launch_from(env={'LOCAL_RANK': '3'}) == (0, 1, 0, 'single')
    assert launch_from(1, 2, env=torchrun) == (1, 2, 0, 'flags')  # flags win: separate launch
    with pytest.raises(ValueError, match='go together'):
        launch_from(rank=1)
    with pytest.raises(ValueError, match='rank 2 of 2'):
        launch_from(2, 2)
    with pytest.raises(ValueError, match='RANK/WORLD_SIZE'):
        launch_from(env={'RANK': '5', 'WORLD_SIZE': '2'})
    with pytest.raises(ValueError, match='not an integer'):
        launch_from(env={'RANK': 'x'})
    # WORLD_SIZE alone: four tasks were each rank 0 of 4 and did the same shards
    for env, shown in (({'WORLD_SIZE': '4'}, 'WORLD_SIZE is set without RANK'),
                       ({'RANK': '1'}, 'RANK is set without WORLD_SIZE')):
        with pytest.raises(ValueError, match=f'^{shown}: set both'):
            launch_from(env=env)


def test_resolve_device(monkeypatch):
    """One rule for every tool's --device: the local rank's GPU by default, a bad name or a
    missing GPU refused naming the fix."""
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert resolve_device(None, 1) == 'cuda:1' and resolve_device('cuda:1', 3) == 'cuda:1'
    with pytest.raises(ValueError, match=r'^--device cuda:2: this node has 2 CUDA devices'):
        resolve_device('cuda:2')  # a later traceback from torch on main
    with pytest.raises(ValueError, match=r'^cuda:3 \(LOCAL_RANK 3: one process per GPU of a '
                       r'node\): this node has 2 CUDA devices'):
        resolve_device(None, 3)  # torchrun --nproc-per-node 4 on a node with 2
    # srun --gpus-per-task=1 with LOCAL_RANK exported: each task sees one GPU; the message
    # named no way out
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    with pytest.raises(ValueError, match=r'\(CUDA_VISIBLE_DEVICES counts\); where each process '
                       r'sees only its own GPU \(srun --gpus-per-task\), pass --device cuda:0; '
                       r'else start at most that many processes per node$'):
        resolve_device(None, 3)
    with pytest.raises(ValueError, match=r'counts\)$'):  # the user's own --device: no hint
        resolve_device('cuda:3')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert resolve_device(None, 3) == 'cpu' and resolve_device('cpu') == 'cpu'
    with pytest.raises(ValueError, match=r'^--device cuda: no CUDA device here \(pass --device'):
        resolve_device('cuda')
    with pytest.raises(ValueError, match=r"^--device gpu0: .*'gpu0' \(e.g. cuda, cuda:1, cpu\)"):
        resolve_device('gpu0')
    # a device type torch names but that is not here (mps on Linux) or runs nothing (meta,
    # whose outputs have no values) was accepted and failed later with torch's traceback
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: False)
    for name in ('meta', 'mps', 'xla:1'):
        with pytest.raises(ValueError, match=rf'^--device {name}: no {name.split(":")[0]} '
                           r'device here \(pass --device cpu, or cuda on a GPU node\)$'):
            resolve_device(name)
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: True)  # a Mac
    assert resolve_device('mps') == 'mps'


@pytest.mark.slow
def test_module_entry_points_do_not_pretend_to_run():
    """``python -m genview_mm.generation.cli`` exited 0 doing nothing on main."""
    old = run_cmd([sys.executable, '-m', 'genview_mm.generation.cli'], timeout=120,
                  returncode=None)
    assert old.returncode != 0 and 'No module named genview_mm.generation.cli' in old.stderr
    job = run_cmd([sys.executable, '-m', 'genview_mm.apis.generation.job'], timeout=120,
                  returncode=2)
    assert job.stderr.strip().startswith('usage: python tools/generate_views.py SOURCE')
