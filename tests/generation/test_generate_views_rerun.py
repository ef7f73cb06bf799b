"""tools/generate_views.py rerun into an existing --out-dir: what is retried, redone, refused
or kept."""
import json
import logging
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from gen_tool import check_complete, cmd
from genview_mm.structures.manifest import read_manifest, read_rows
from helpers import DIST_VARS, save_tiny_unclip

RECORD = osp.join('shards', 'shard-00000.jsonl')  # the one shard of <= 1000 images


@pytest.fixture
def five(photo_dir, tmp_path):
    """5 photos and one undecodable file, named in a list file with relative paths."""
    src = tmp_path / 'src'
    shutil.copytree(osp.join(photo_dir, 'a'), src / 'a')
    (src / 'a' / 'zz_broken.jpg').write_bytes(b'\x00not a jpeg')
    names = sorted(os.listdir(src / 'a'))
    (tmp_path / 'train.txt').write_text(''.join(f'a/{n} 0\n' for n in names))
    return str(src), str(tmp_path / 'train.txt'), [f'a/{n}' for n in names]


def test_transient_failures_are_retried_undecodable_ones_kept(
        gen_main, five, tiny_unclip_pca, tiny_unclip_path, tmp_path, capsys, caplog):
    src, listing, keys = five
    out = str(tmp_path / 'out')
    (tmp_path / 'wrong').mkdir()
    args = cmd(listing, tiny_unclip_pca, tiny_unclip_path, out)[2:]
    caplog.set_level(logging.INFO)
    # a wrong --data-root: every image fails, and the run says why and fails
    assert gen_main(args + ['--data-root', str(tmp_path / 'wrong')]) == 1
    assert 'share 6, skipped 0, new 6, redone 0 (lost outputs), retried 0 (failed before); ' \
           'rows written: ok 0, failed 6' in capsys.readouterr().out
    assert '6 of 6 images failed (100% >= 50%)' in caplog.text
    assert 'Most common cause: transient: missing file (6 images)' in caplog.text
    assert '--data-root' in caplog.text
    caplog.clear()
    # the flag fixed: the transient failures are retried without --retry-failed
    assert gen_main(args + ['--data-root', src]) == 0
    assert 'share 6, skipped 0, new 0, redone 0 (lost outputs), retried 6 (failed before); ' \
           'rows written: ok 5, failed 1' in capsys.readouterr().out
    rows = check_complete(out, keys[:5])
    failed = read_manifest(out, status='failed')
    assert [r['key'] for r in failed] == ['a/zz_broken.jpg']
    assert failed[0]['reason'].startswith('undecodable: undecodable image:')
    # the undecodable file is not retried forever ...
    assert gen_main(args + ['--data-root', src]) == 0
    assert 'share 6, skipped 6, new 0' in capsys.readouterr().out
    # ... unless asked (it fails again: 1 of the 6 images, status 0)
    assert gen_main(args + ['--data-root', src, '--retry-failed']) == 0
    assert 'skipped 5, new 0, redone 0 (lost outputs), retried 1 (failed before); rows ' \
           'written: ok 0, failed 1' in capsys.readouterr().out
    assert [r['output'] for r in read_manifest(out)] == [r['output'] for r in rows]
    # a file gone for good is a transient failure each rerun retries: that rerun failed 1 of
    # the 1 image it tried and exited 1 (a Slurm array's afterok merge then never ran), though
    # 5 of the 6 views are there; status 1 is for a run whose failures are half the share
    os.remove(osp.join(src, 'a', 'zz_broken.jpg'))
    assert gen_main(args + ['--data-root', src, '--retry-failed']) == 0
    caplog.clear()
    assert gen_main(args + ['--data-root', src]) == 0
    assert 'skipped 5, new 0, redone 0 (lost outputs), retried 1 (failed before); rows ' \
           'written: ok 0, failed 1' in capsys.readouterr().out
    assert 'images failed' not in caplog.text
    assert read_manifest(out, status='failed')[0]['reason'].startswith(
        'transient: missing file')


def test_lost_and_damaged_outputs_are_redone(gen_main, merge_main, photo_dir, tiny_unclip_pca,
                                             tiny_unclip_path, tmp_path, capsys):
    out = str(tmp_path / 'out')
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]
    assert gen_main(args) == 0
    rows = read_manifest(out)
    first = {r['key']: np.asarray(Image.open(r['output'])) for r in rows}
    deleted, emptied, cut = (r['output'] for r in rows[:3])
    os.remove(deleted)
    open(emptied, 'w').close()
    data = open(cut, 'rb').read()
    open(cut, 'wb').write(data[:len(data) // 2])
    capsys.readouterr()
    assert gen_main(args) == 0  # by default: missing and empty files (a stat per row)
    assert 'skipped 8, new 0, redone 2' in capsys.readouterr().out
    assert os.path.getsize(deleted) > 0 and os.path.getsize(emptied) > 0
    assert os.path.getsize(cut) == len(data) // 2
    assert gen_main(args + ['--verify']) == 0  # a full decode finds the cut one
    assert 'skipped 9, new 0, redone 1' in capsys.readouterr().out
    rows = check_complete(out, list(first))  # merged: each image once, all decode
    for r in rows:  # regenerated with the same seed: the same image
        assert np.abs(np.asarray(Image.open(r['output']), np.int16) - first[r['key']]).max() <= 3
    assert len(list(read_rows(osp.join(out, RECORD)))) == 10  # one newest row per image
    assert merge_main([out, '--source', photo_dir, '--check-files']) == 0
    # the worker's own merge failing (a folder where the manifest goes): a traceback before
    os.remove(osp.join(out, 'manifest.jsonl'))
    os.mkdir(osp.join(out, 'manifest.jsonl'))
    capsys.readouterr()
    assert gen_main(args) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err and err.count('\n') == 1, err
    assert err.startswith('generate_views.py: error: every shard is done, but the merge failed: ')
    assert err.rstrip().endswith(f'fix that and run tools/merge_manifests.py {out}')
    assert [f for f in os.listdir(out) if f.startswith('.')] == []  # no temporary file left


def test_same_file_name_with_other_extension_or_case(gen_main, photo_dir, tiny_unclip_pca,
                                                     tiny_unclip_path, tmp_path):
    src = tmp_path / 'src' / 'n01'
    src.mkdir(parents=True)
    photos = sorted(os.listdir(osp.join(photo_dir, 'a')))
    for name, photo in zip(('x.jpg', 'x.png', 'y.JPEG', 'y.jpeg'), photos):
        Image.open(osp.join(photo_dir, 'a', photo)).save(src / name)
    out = str(tmp_path / 'out')
    assert gen_main(cmd(str(src.parent), tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 0
    rows = check_complete(out, ['n01/x.jpg', 'n01/x.png', 'n01/y.JPEG', 'n01/y.jpeg'])
    outputs = [r['output'] for r in rows]
    assert len({o.casefold() for o in outputs}) == 4  # distinct, even ignoring case
    assert all(osp.dirname(o) == osp.join(out, 'images', 'n01') for o in outputs)
    assert sorted(osp.basename(o)[0] for o in outputs) == ['x', 'x', 'y', 'y']  # readable
    pixels = [np.asarray(Image.open(o), np.int16) for o in outputs]
    for i in range(4):  # four different sources -> four different views on disk
        for j in range(i):
            assert np.abs(pixels[i] - pixels[j]).mean() > 1


class ModelLoaded(Exception):
    pass


CHANGES = [(['--steps', '2'], "steps: 3 -> 2"), (['--guidance', '5'], 'guidance: 10.0 -> 5.0'),
           (['--seed', '1'], 'seed: 0 -> 1'), (['--prompt', 'a'], "prompt: '' -> 'a'"),
           (['--scheduler', 'DDPMScheduler'], "scheduler: None -> 'DDPMScheduler'"),
           (['--noise-levels', '0', '50', '200', '300', '400'], 'noise_levels: [0, 100,'),
           (['--noise-bins', '0.1', '0.4', '0.6', '0.8'], 'noise_bins: [0.2,'),
           (['--output-size', '16'], 'output_size: 32 -> 16'), (['--ext', '.png'], 'ext:'),
           (['--quality', '80'], 'quality: 95 -> 80'),
           (['--gen-size', '64'], 'gen_size: None -> 64'),
           (['--num-variations', '2'], 'num_variations: 1 -> 2'),
           (['--dtype', 'float16'], "dtype: 'float32' -> 'float16'"),
           (['--output', 'tensor'], "output: 'pil' -> 'tensor'")]


def test_other_settings_are_refused_before_any_model_loads(
        gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path, capsys,
        monkeypatch):
    out = str(tmp_path / 'out')
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]
    assert gen_main(args) == 0
    old_rows = read_manifest(out)
    moved_model = shutil.copytree(tiny_unclip_path, str(tmp_path / 'moved_unclip'))
    other_weights = save_tiny_unclip(str(tmp_path / 'other_unclip'), seed=1)
    same_pca = shutil.copy(tiny_unclip_pca, str(tmp_path / 'moved_pca.pth'))
    other_pca = shutil.copy(tiny_unclip_pca, str(tmp_path / 'other_pca.pth'))
    with open(other_pca, 'ab') as f:
        f.write(b'\0')

    def loaded(*a, **k):
        raise ModelLoaded

    import genview_mm.apis.generation.job as job
    monkeypatch.setattr(job, 'load_generator', loaded)
    changes = CHANGES + [(['--pretrained', other_weights], "pretrained: 'weights:"),
                         (['--pca', other_pca], 'pca_sha256: '),
                         (['--shard-size', '4'], 'shard_size: 1000 -> 4')]
    capsys.readouterr()
    for extra, shown in changes:
        assert gen_main(args + extra) == 2, extra
        err = capsys.readouterr().err
        assert shown in err and 'other settings' in err and '--overwrite' in err, (extra, err)
    assert gen_main(args) == 0  # nothing left to generate: no model loads
    assert 'share 10, skipped 10' in capsys.readouterr().out
    # a kill after a shard's last row was journaled (or before its journal went): the shard
    # is finished from its rows, without the model (it loaded, for nothing to generate)
    journal = osp.join(out, 'shards', 'shard-00000.journal')
    with open(journal, 'w') as f:
        f.write(open(osp.join(out, 'shards', 'shard-00000.jsonl')).readlines()[3])
    assert gen_main(args) == 0
    assert 'share 10, skipped 10' in capsys.readouterr().out and not osp.exists(journal)
    assert read_manifest(out) == old_rows
    os.remove(osp.join(out, old_rows[0]['output']))  # one view to redo: the model must load
    for extra in (['--pca', same_pca], ['--pretrained', moved_model], ['--batch-size', '3'],
                  ['--max-pipeline-batch', '2'], ['--no-level-buckets'], ['--device', 'cpu'],
                  ['--verify'], ['--no-merge'],
                  ['--retry-failed'], ['--rank', '0', '--world-size', '1'], ['--writers', '0'],
                  ['--compile'], ['--output', 'pil'], ['--output', 'auto'],
                  ['--gen-size', '32']):  # the tiny pipeline's native size, as if unset
        with pytest.raises(ModelLoaded):  # accepted: these do not change the views
            gen_main(args + extra)
    monkeypatch.undo()
    for k in DIST_VARS:
        monkeypatch.delenv(k, raising=False)
    stale = osp.join(out, 'images', 'a', 'stale.jpg')
    open(stale, 'wb').write(b'x')
    assert gen_main(args + ['--steps', '2', '--overwrite']) == 0
    assert 'share 10, skipped 0, new 10' in capsys.readouterr().out
    assert osp.isfile(stale)  # not recorded by the tool: --overwrite leaves it
    assert len(list(read_rows(osp.join(out, RECORD)))) == 10
    new_rows = read_manifest(out)
    assert [r['output'] for r in new_rows] == [r['output'] for r in old_rows]
    assert gen_main(args + ['--steps', '2', '--overwrite']) == 0  # same settings: resumes
    assert 'share 10, skipped 10' in capsys.readouterr().out


def test_a_hub_id_and_its_cached_folder_are_one_model(
        gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path, capsys, monkeypatch):
    """A hub id was recorded as typed, its native size unknown: a run started with the folder
    (``hf download``'s, or a copy) was refused when resumed with the hub id, and so was one that
    added or dropped ``--gen-size`` at the native size. The hub id now stands for its snapshot
    in the Hugging Face cache (what diffusers loads offline), and a record that holds a hub id
    (made before) matches that folder's fingerprint."""
    import huggingface_hub.constants

    from genview_mm.generation.pipeline_loader import native_size
    hub, repo = tmp_path / 'hub', 'genview/tiny-unclip'
    snapshot = hub / 'models--genview--tiny-unclip' / 'snapshots' / '0123abcd'
    shutil.copytree(tiny_unclip_path, str(snapshot))
    (hub / 'models--genview--tiny-unclip' / 'refs').mkdir()
    (hub / 'models--genview--tiny-unclip' / 'refs' / 'main').write_text('0123abcd')
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(hub))
    native = str(native_size(tiny_unclip_path))
    out = str(tmp_path / 'out')
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 0

    def loaded(*a, **k):
        raise ModelLoaded

    import genview_mm.apis.generation.job as job
    monkeypatch.setattr(job, 'load_generator', loaded)
    os.remove(read_manifest(out)[0]['output'])  # one view to redo: the model must load
    for model, extra in ((repo, []), (repo, ['--gen-size', native]),
                         (tiny_unclip_path, ['--gen-size', native])):
        with pytest.raises(ModelLoaded):  # accepted
            gen_main(cmd(photo_dir, tiny_unclip_pca, model, out, *extra)[2:])
    record = osp.join(out, 'generation_settings.json')
    settings = json.load(open(record))
    assert settings['pretrained'].startswith('weights:') and settings['gen_size'] is None
    json.dump(dict(settings, pretrained=repo, gen_size=int(native)), open(record, 'w'))
    with pytest.raises(ModelLoaded):  # a record made with the hub id and --gen-size NATIVE
        gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:])
    capsys.readouterr()
    other = save_tiny_unclip(str(tmp_path / 'other_unclip'), seed=1)
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, other, out)[2:]) == 2  # other weights
    assert "pretrained: 'weights:" in capsys.readouterr().err


def test_a_hub_id_downloaded_at_the_first_start_is_recorded_by_its_weights(
        gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path, capsys, monkeypatch):
    """A hub id not in the cache yet (an online node downloads it when the model loads): the
    settings were computed before that, so the record held the hub id, and the check after
    loading, which reads a cached hub id as its folder's fingerprint, refused the run's own
    start (exit 2, nothing generated). The settings are now taken again once it has loaded."""
    import huggingface_hub.constants

    import genview_mm.apis.generation.job as job
    from genview_mm.foreground.encoder_identity import model_fingerprint
    from genview_mm.generation.pipeline_loader import native_size
    hub, repo = tmp_path / 'hub', 'genview/tiny-unclip'
    cached = hub / 'models--genview--tiny-unclip'
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(hub))
    load, served = job.load_generator, [tiny_unclip_path]  # what the hub serves

    def download_then_load(gen, quiet=False):  # what from_pretrained does on an online node
        shutil.copytree(served[0], str(cached / 'snapshots' / '0123abcd'))
        (cached / 'refs').mkdir()
        (cached / 'refs' / 'main').write_text('0123abcd')
        return load(gen, quiet)

    monkeypatch.setattr(job, 'load_generator', download_then_load)
    out = str(tmp_path / 'out')
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, repo, out)[2:]) == 0
    settings = json.load(open(osp.join(out, 'generation_settings.json')))
    assert settings['pretrained'] == model_fingerprint(tiny_unclip_path)
    check_complete(out, [r['key'] for r in read_manifest(out)])
    assert len(read_manifest(out)) == 10
    # another node, its cache empty (a torchrun across nodes): the hub id is checked once it
    # has loaded, against the record's fingerprint (refused before loading on main)
    shutil.rmtree(str(cached))
    os.remove(read_manifest(out)[0]['output'])
    capsys.readouterr()
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, repo, out)[2:]) == 0
    assert 'skipped 9, new 0, redone 1' in capsys.readouterr().out
    served[0] = save_tiny_unclip(str(tmp_path / 'other_unclip'), seed=1)
    shutil.rmtree(str(cached))  # the hub serves other weights now: refused once they load
    os.remove(read_manifest(out)[1]['output'])  # (the PCA check would stop it first)
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, repo, out, '--no-encoder-check')[2:]) == 2
    assert "pretrained: 'weights:" in capsys.readouterr().err
    # ... unless --overwrite: the folder is cleared once the new weights have loaded, before
    # the records are read (the check after loading refused it, naming --overwrite)
    shutil.rmtree(str(cached))
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, repo, out, '--no-encoder-check',
                        '--overwrite')[2:]) == 0
    assert 'share 10, skipped 0, new 10' in capsys.readouterr().out
    assert json.load(open(osp.join(out, 'generation_settings.json')))['pretrained'] == \
        model_fingerprint(served[0])
    shutil.rmtree(str(cached))  # an empty cache again, the same weights: nothing cleared,
    native = str(native_size(tiny_unclip_path))  # and --gen-size NATIVE is no difference
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, repo, out, '--no-encoder-check',
                        '--overwrite', '--gen-size', native)[2:]) == 0
    assert 'share 10, skipped 10' in capsys.readouterr().out


def test_files_added_to_the_model_folder_later_resume(
        gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path, capsys, monkeypatch):
    """A run started on a pipeline folder resumes after a full-repository download added files
    the pipeline does not load (refused on main: the whole folder was fingerprinted); a record
    holding that whole-folder fingerprint (made before) resumes too; other weights still not."""
    from genview_mm.foreground.encoder_identity import model_fingerprint
    model = shutil.copytree(tiny_unclip_path, str(tmp_path / 'unclip'))
    out = str(tmp_path / 'out')
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, model, out)[2:]) == 0
    for rel in ('README.md', 'sd21-unclip-h.ckpt', 'unet/diffusion_pytorch_model.bin'):
        with open(osp.join(model, rel), 'wb') as f:
            f.write(b'added by hf download')

    def loaded(*a, **k):
        raise ModelLoaded

    import genview_mm.apis.generation.job as job
    load = job.load_generator
    monkeypatch.setattr(job, 'load_generator', loaded)
    os.remove(read_manifest(out)[0]['output'])  # one view to redo: the model must load
    with pytest.raises(ModelLoaded):  # accepted
        gen_main(cmd(photo_dir, tiny_unclip_pca, model, out)[2:])
    record = osp.join(out, 'generation_settings.json')
    settings = json.load(open(record))
    whole = model_fingerprint(model, whole_folder=True)
    assert settings['pretrained'] == model_fingerprint(model) != whole
    json.dump(dict(settings, pretrained=whole), open(record, 'w'))
    with pytest.raises(ModelLoaded):  # a record of the whole folder, from before
        gen_main(cmd(photo_dir, tiny_unclip_pca, model, out)[2:])
    monkeypatch.setattr(job, 'load_generator', load)
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, model, out)[2:]) == 0
    assert 'share 10, skipped 9, new 0, redone 1' in capsys.readouterr().out
    # the started run put its settings in the old record's place: the next start compares
    # fingerprints at once (the whole folder, .ckpt included, was hashed at every start)
    assert json.load(open(record)) == settings
    json.dump(dict(settings, pretrained=whole), open(record, 'w'))
    other = save_tiny_unclip(str(tmp_path / 'other_unclip'), seed=1)
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, other, out)[2:]) == 2  # other weights
    assert f"pretrained: '{whole}' -> 'weights:" in capsys.readouterr().err


def test_images_added_to_the_source_lose_no_row(gen_main, photo_dir, tiny_unclip_pca,
                                                tiny_unclip_path, tmp_path, capsys):
    """Added images shift the shard boundaries: a shard that runs for a new image keeps the
    rows its record held for images that moved to a neighbouring, finished shard (they were
    dropped, then regenerated by the next run)."""
    src = str(tmp_path / 'src')
    shutil.copytree(photo_dir, src)
    out = str(tmp_path / 'out')
    args = cmd(src, tiny_unclip_pca, tiny_unclip_path, out, '--shard-size', '2',
               '--batch-size', '2')[2:]
    assert gen_main(args) == 0
    first = {r['key']: os.path.getmtime(r['output']) for r in read_manifest(out)}
    for folder in ('a', 'b'):  # sort right after img_0000: every later image moves on
        shutil.copy(osp.join(src, folder, 'img_0000.jpg'), osp.join(src, folder, 'img_0000x.jpg'))
    capsys.readouterr()
    assert gen_main(args) == 0
    assert 'share 12, skipped 10, new 2, redone 0' in capsys.readouterr().out
    rows = check_complete(out, list(first) + ['a/img_0000x.jpg', 'b/img_0000x.jpg'])
    assert {r['key']: os.path.getmtime(r['output']) for r in rows if r['key'] in first} == first
    assert gen_main(args) == 0  # and a rerun finds everything done
    assert 'share 12, skipped 12, new 0' in capsys.readouterr().out


def test_check_args_compares_the_settings_record(gen_main, photo_dir, tiny_unclip_pca,
                                                 tiny_unclip_path, tmp_path, capsys,
                                                 monkeypatch):
    """slurm_generate.sh runs --check-args before sbatch. It did not read the settings record,
    so a rerun with other settings was submitted, every array task stopped with exit 2 and the
    afterok merge job waited forever. The record is compared now, before any model loads; the
    settings a task resolves on its own device (dtype, output, with no --device) are left to
    the task, as the submitting node may have no GPU."""
    out = str(tmp_path / 'out')
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]
    assert gen_main(args) == 0
    capsys.readouterr()

    def loaded(*a, **k):
        raise ModelLoaded

    import genview_mm.apis.generation.job as job
    monkeypatch.setattr(job, 'load_generator', loaded)
    assert gen_main(args + ['--steps', '2', '--check-args']) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'generate_views.py: error: {out} holds views generated with other '
                          'settings') and 'steps: 3 -> 2' in err
    assert gen_main(args + ['--check-args']) == 0 and capsys.readouterr().err == ''
    record = osp.join(out, 'generation_settings.json')
    with open(record) as f:
        settings = json.load(f)
    with open(record, 'w') as f:  # as a GPU run records them
        json.dump(dict(settings, dtype='float16', output='tensor'), f)
    no_device = [a for a in args if a not in ('--device', 'cpu')]
    assert gen_main(no_device + ['--check-args']) == 0, capsys.readouterr().err
    assert gen_main(no_device + ['--check-args', '--dtype', 'float32']) == 2
    assert "dtype: 'float16' -> 'float32'" in capsys.readouterr().err
    assert gen_main(args + ['--check-args']) == 2  # --device cpu: float32 and pil there
    assert "output: 'tensor' -> 'pil'" in capsys.readouterr().err
