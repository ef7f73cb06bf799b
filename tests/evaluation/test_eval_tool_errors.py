"""User errors in the evaluation tools: one clear message naming the file or option, a non-zero
exit code, no traceback, and nothing written."""
import os
import os.path as osp
import pickle
import re
import shutil

import pytest
import torch

from genview_mm.evaluation.checkpoint_io import CheckpointError, read_checkpoint
from genview_mm.evaluation.convert import convert_checkpoint
from genview_mm.evaluation.subsets import write_ann_file
from helpers import run_script, run_tool, zero_tensor_bytes


def write_bad(kind: str, path: str) -> None:
    if kind == 'text':
        with open(path, 'w') as f:
            f.write('epoch_200.pth\nthis is a download page, not weights\n')
    elif kind == 'jpeg':
        with open(path, 'wb') as f:
            f.write(b'\xff\xd8\xff\xe0\x00\x10JFIF\x00' + bytes(range(256)) * 4)
    elif kind == 'pickled-list':
        with open(path, 'wb') as f:
            pickle.dump([1, 2, 3], f)


CONVERT_CASES = {  # kind -> what the message must say
    'text': r'is not a PyTorch checkpoint: it is a text file starting with \'epoch_200.pth\'',
    'jpeg': 'is not a PyTorch checkpoint: it is a JPEG image',
    'pickled-list': r'is not a PyTorch checkpoint: it is a plain pickle \(not written by '
                    r'torch.save\)',
}


@pytest.mark.slow
@pytest.mark.parametrize('kind', sorted(CONVERT_CASES))
def test_convert_tool_refuses_a_non_checkpoint(kind, tmp_path):
    src, dst = str(tmp_path / f'{kind}.pth'), str(tmp_path / 'out' / 'backbone.pth')
    write_bad(kind, src)
    proc = run_tool('convert_checkpoint.py', src, dst, returncode=1)
    assert 'Traceback' not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f'convert_checkpoint.py: error: {src} ')
    assert re.search(CONVERT_CASES[kind], lines[-1]), lines[-1]
    assert 'Expected a file written by torch.save' in lines[-1]
    assert not osp.exists(dst) and not osp.exists(osp.dirname(dst))


def test_convert_tool_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    """A full disk while writing the backbone (DiskFull from the atomic write) ends in one line
    naming the folder, exit 1; it was a traceback."""
    import errno

    import genview_mm.evaluation.convert as convert
    from genview_mm.utils.atomic_write import DiskFull

    def full(src, dst, *args, **kwargs):
        raise DiskFull(errno.ENOSPC, 'No space left on device', str(tmp_path / 'out'))

    monkeypatch.setattr(convert, 'convert_checkpoint', full)
    with pytest.raises(SystemExit) as exit_:
        run_script('convert_checkpoint.py', str(tmp_path / 'ssl.pth'),
                   str(tmp_path / 'out' / 'backbone.pth'))
    assert exit_.value.code == ('convert_checkpoint.py: error: no space left on the device '
                                f'writing to {tmp_path / "out"} (No space left on device): free '
                                'space or write elsewhere, then rerun')


@pytest.fixture()
def ssl_ckpt(tmp_path):
    path = str(tmp_path / 'ssl.pth')
    torch.save({'state_dict': {'backbone.conv1.weight': torch.ones(2, 3, 3, 3)}}, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize('where', ['a_file/backbone.pth', 'a_file/deeper/backbone.pth'])
def test_convert_tool_into_a_path_under_a_file_is_one_line(where, ssl_ckpt, tmp_path):
    """An output whose parent is a file was a FileExistsError / NotADirectoryError traceback
    from the write, after the checkpoint was read: now one line before that, exit 2 (as for an
    output that is a folder), nothing written."""
    (tmp_path / 'a_file').write_text('mine')
    dst = tmp_path / where
    proc = run_tool('convert_checkpoint.py', ssl_ckpt, dst, returncode=2)
    assert (proc.stdout, proc.stderr) == ('', (
        f'convert_checkpoint.py: error: cannot write {dst}: {tmp_path / "a_file"} is a file, not '
        'a folder; choose another path\n'))
    assert sorted(os.listdir(tmp_path)) == ['a_file', 'ssl.pth']
    assert (tmp_path / 'a_file').read_text() == 'mine'


@pytest.mark.slow
def test_convert_tool_from_a_missing_source_is_a_usage_error(tmp_path):
    """A mistyped source path exited 1, as a damaged file does; every tool's refusal of a path
    that is not there is exit 2 (make_semi_subsets.py --train-list, a missing dst folder)."""
    proc = run_tool('convert_checkpoint.py', tmp_path / 'nope.pth', tmp_path / 'out.pth',
                    returncode=2)
    assert (proc.stdout, proc.stderr) == ('', f'convert_checkpoint.py: error: checkpoint '
                                          f'{tmp_path / "nope.pth"} does not exist (or is not a '
                                          'file)\n')
    assert os.listdir(tmp_path) == []


def test_a_folder_given_as_the_checkpoint_names_a_checkpoint_in_it(tmp_path):
    """A work_dir given for its checkpoint was called one that 'does not exist', with nothing to
    do; it is named as a folder, with the checkpoint its last_checkpoint names (else its newest
    .pth) as the file to give."""
    work_dir = tmp_path / 'genview_mocov2_r50_in1k'
    work_dir.mkdir()
    with pytest.raises(FileNotFoundError, match=r'is a folder, not a file: give a checkpoint '
                       r'file, e\.g\. .*/genview_mocov2_r50_in1k/epoch_N\.pth$'):
        read_checkpoint(str(work_dir))
    for epoch in (9, 10):
        torch.save({'state_dict': {}}, str(work_dir / f'epoch_{epoch}.pth'))
    os.utime(work_dir / 'epoch_9.pth', (1, 1))  # epoch_10 is the newest, though 9 sorts last
    with pytest.raises(FileNotFoundError, match=r'e\.g\. .*/epoch_10\.pth$'):
        convert_checkpoint(str(work_dir), str(tmp_path / 'out.pth'))
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_9.pth'))
    with pytest.raises(FileNotFoundError, match=r'e\.g\. .*/epoch_9\.pth$'):
        convert_checkpoint(str(work_dir), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()


def test_an_unreadable_folder_given_as_the_checkpoint_is_still_named_a_folder(tmp_path,
                                                                            monkeypatch):
    """f1f9758: a work_dir that cannot be listed (no read permission; root lists any, so
    os.listdir is made to refuse) raised the PermissionError of the hint's own listing, not
    the one-line folder message."""
    from genview_mm.evaluation import checkpoint_io
    work_dir = tmp_path / 'locked'
    work_dir.mkdir()

    def refuse(path):
        raise PermissionError(13, 'Permission denied', str(path))
    monkeypatch.setattr(checkpoint_io.os, 'listdir', refuse)
    with pytest.raises(FileNotFoundError, match=r'locked is a folder, not a file: give a '
                       r'checkpoint file, e\.g\. .*/locked/epoch_N\.pth$'):
        read_checkpoint(str(work_dir))


def test_convert_tool_into_an_empty_path_is_a_usage_error(ssl_ckpt, tmp_path):
    """``DST=''`` (an unset variable): the checkpoint was read and extracted, then the rename
    failed ('No such file or directory ... -> ''', exit 1)."""
    proc = run_tool('convert_checkpoint.py', ssl_ckpt, '', returncode=2, cwd=str(tmp_path))
    assert proc.stderr.strip().splitlines()[-1] == (
        'convert_checkpoint.py: error: the output path is empty: give the file to write the '
        'backbone weights to')
    assert sorted(os.listdir(tmp_path)) == ['ssl.pth']


def test_convert_tool_into_a_read_only_folder_is_one_line(ssl_ckpt, tmp_path, monkeypatch,
                                                          capsys):
    """A folder where no file can be created (read-only folder or filesystem; root writes a
    chmod-555 folder, so the refusal is simulated): one line, exit 2, before the checkpoint is
    read. A write that fails anyway (the folder changed meanwhile) is one line too, exit 1, as
    the tool's other I/O errors, and leaves nothing behind."""
    import tempfile

    import genview_mm.evaluation.convert as convert
    from genview_mm.utils import atomic_write

    def refused(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')

    folder = tmp_path / 'ro'
    folder.mkdir()
    dst = folder / 'backbone.pth'
    with monkeypatch.context() as patch:
        patch.setattr(tempfile, 'NamedTemporaryFile', refused)
        with pytest.raises(SystemExit) as exit_:
            run_script('convert_checkpoint.py', ssl_ckpt, dst)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        f'convert_checkpoint.py: error: cannot write {dst}: no file can be created in {folder} '
        '(Permission denied); choose a writable location\n')
    real_open = open

    def no_write_in(path, mode='r', *args, **kwargs):  # the atomic write's temporary file
        if str(path).startswith(str(folder)) and 'w' in mode:
            raise PermissionError(13, 'Permission denied', str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(atomic_write, 'open', no_write_in, raising=False)
    assert convert.atomic_write is atomic_write.atomic_write
    with pytest.raises(SystemExit) as exit_:
        run_script('convert_checkpoint.py', ssl_ckpt, dst)
    assert exit_.value.code == (f'convert_checkpoint.py: error: cannot write {dst} (Permission '
                                'denied); nothing was written: choose a writable location')
    assert not os.listdir(folder)


def test_unreadable_and_refused_checkpoints(tmp_path):
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(CheckpointError, match='it is an empty file'):
        read_checkpoint(str(tmp_path / 'empty.pth'))
    torch.save({'state_dict': {'backbone.w': torch.ones(1000)}}, str(tmp_path / 'ok.pth'))
    torch.save({'state_dict': {'backbone.w': torch.ones(3)}}, str(tmp_path / 'legacy.pth'),
               _use_new_zipfile_serialization=False)  # torch < 1.6 format: still accepted
    assert torch.equal(read_checkpoint(str(tmp_path / 'legacy.pth'))['state_dict']['backbone.w'],
                       torch.ones(3))
    data = (tmp_path / 'ok.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])  # an interrupted download
    with pytest.raises(CheckpointError, match=r'cut\.pth is not a PyTorch checkpoint: it is a '
                       'truncated or damaged zip archive'):
        read_checkpoint(str(tmp_path / 'cut.pth'))
    torch.save([torch.ones(2)], str(tmp_path / 'list.pth'))
    with pytest.raises(CheckpointError, match=r'list\.pth is a torch.save file but not a '
                       'checkpoint: it holds a list, not a dict'):
        read_checkpoint(str(tmp_path / 'list.pth'))

    class Evil:
        def __reduce__(self):
            return (os.system, ('true', ))
    torch.save({'state_dict': {'backbone.w': torch.ones(1)}, 'meta': {'x': Evil()}},
               str(tmp_path / 'evil.pth'))
    with pytest.raises(CheckpointError, match=r'evil\.pth was refused .*it pickles posix\.system'):
        convert_checkpoint(str(tmp_path / 'evil.pth'), str(tmp_path / 'out.pth'))
    with pytest.raises(FileNotFoundError, match='missing.pth does not exist'):
        read_checkpoint(str(tmp_path / 'missing.pth'))
    assert sorted(os.listdir(tmp_path)) == ['cut.pth', 'empty.pth', 'evil.pth', 'legacy.pth',
                                            'list.pth', 'ok.pth']


def test_damaged_tensor_bytes_and_torchscript_are_named(tmp_path):
    """torch.load does not check the zip's CRC-32s: a checkpoint with a hole of zeros in a
    tensor (a download with a gap, bit rot) loaded and was converted with other weights, exit
    0. It is refused now, naming the damaged entry. A TorchScript archive was called 'truncated
    or corrupted' (download it again): it is named as TorchScript. A file saved without CRCs
    (torch >= 2.6 can) still loads."""
    weights = {'state_dict': {'backbone.w': torch.arange(40000, dtype=torch.float32)}}
    torch.save(weights, str(tmp_path / 'ok.pth'))
    zero_tensor_bytes(str(tmp_path / 'ok.pth'), str(tmp_path / 'holed.pth'))
    with pytest.raises(CheckpointError, match=r'holed\.pth is damaged: its entry \S*data/0 does '
                       r'not match its checksum.*copy or download it again'):
        read_checkpoint(str(tmp_path / 'holed.pth'))
    with pytest.raises(CheckpointError, match='is damaged'):
        convert_checkpoint(str(tmp_path / 'holed.pth'), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / 'ts.pt'))
    with pytest.raises(CheckpointError, match=r'ts\.pt is a TorchScript model, not a checkpoint'
                       r': load it with torch\.jit\.load and torch\.save its state_dict\(\)'):
        read_checkpoint(str(tmp_path / 'ts.pt'))
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(weights, str(tmp_path / 'no_crc.pth'))
    finally:
        torch.serialization.set_crc32_options(True)
    got = read_checkpoint(str(tmp_path / 'no_crc.pth'))['state_dict']['backbone.w']
    assert torch.equal(got, weights['state_dict']['backbone.w'])


@pytest.fixture()
def train_list(tmp_path):
    path = str(tmp_path / 'train.txt')
    write_ann_file([(f'n0{c}/img_{i}.JPEG', c) for c in range(3) for i in range(10)], path)
    return path


@pytest.mark.parametrize('option,message', [
    (['--num-per-class', '0'], '--num-per-class must be at least 1, got 0'),
    (['--num-per-class', '5', '-2'], '--num-per-class must be at least 1, got -2'),
    (['--percent', '0'], r'--percent must be in \(0, 100\], got 0'),
    (['--percent', '10', '150'], r'--percent must be in \(0, 100\], got 150'),
    (['--percent', '-5'], r'--percent must be in \(0, 100\], got -5'),
], ids=['num0', 'num-negative', 'pct0', 'pct150', 'pct-negative'])
def test_semi_subsets_refuses_bad_sizes(option, message, train_list, tmp_path):
    out_dir = tmp_path / 'meta'
    proc = run_tool('make_semi_subsets.py', '--train-list', train_list, *option, '--out-dir',
                    out_dir, returncode=2)
    assert 'Traceback' not in proc.stderr
    assert re.search(message, proc.stderr) and 'nothing was written' in proc.stderr
    assert not out_dir.exists()


@pytest.mark.slow
def test_semi_subsets_writes_nothing_when_one_request_fails(train_list, tmp_path):
    out_dir = tmp_path / 'meta'
    # 10% is fine (1 per class), 11 per class is not: neither list may be written
    proc = run_tool('make_semi_subsets.py', '--train-list', train_list, '--percent', '10',
                    '--num-per-class', '11', '--out-dir', out_dir, returncode=2)
    assert 'Traceback' not in proc.stderr
    assert 'make_semi_subsets.py: error: 3 class(es) have fewer than 11 images' in proc.stderr
    assert 'nothing was written' in proc.stderr
    assert not out_dir.exists()
    missing = run_tool('make_semi_subsets.py', '--train-list', tmp_path / 'nope.txt',
                       '--percent', '1', '--out-dir', out_dir, returncode=2)
    assert missing.stderr.strip().endswith(  # it said '[Errno 2] No such file ...' alone
        f"--train-list {str(tmp_path / 'nope.txt')!r} does not exist: give the list file "
        '(nothing was written)'), missing.stderr
    assert 'Traceback' not in missing.stderr and not out_dir.exists()
    folder = run_tool('make_semi_subsets.py', '--simclr', tmp_path, '--out-dir', out_dir,
                      returncode=2)
    assert f"--simclr {str(tmp_path)!r} is a folder: give the list file" in folder.stderr


@pytest.mark.slow
def test_semi_subsets_never_replace_an_input_or_write_into_a_file(train_list, tmp_path):
    """An --out-dir that is a file was a FileExistsError traceback; one holding the input list
    under an output's name replaced the list by its own subset."""
    proc = run_tool('make_semi_subsets.py', '--train-list', train_list, '--percent', '10',
                    '--out-dir', train_list, returncode=2)
    assert proc.stderr.strip().endswith(f"--out-dir {str(train_list)!r} is a file, not a folder "
                                        '(nothing was written)')
    own = tmp_path / 'meta' / 'train_10percent.txt'
    own.parent.mkdir()
    shutil.copy(train_list, own)
    before = own.read_text()
    proc = run_tool('make_semi_subsets.py', '--train-list', own, '--percent', '10', '--out-dir',
                    own.parent, returncode=2)
    assert proc.stderr.strip() == (f'make_semi_subsets.py: error: {own} is one of the input '
                                   'lists and would be replaced by its own subset: pass another '
                                   '--out-dir (nothing was written)')
    assert own.read_text() == before


def test_semi_subsets_refuse_to_replace_a_list_with_other_lines(train_list, tmp_path, capsys):
    """A list of the user's under an output's name was replaced silently; now it is refused
    (one line, exit 2 as every tool's refusal to replace a file: it was 1; nothing written)
    unless --overwrite; a rerun that would write the same lines succeeds."""
    meta = tmp_path / 'meta'
    meta.mkdir()
    mine = meta / 'train_10percent.txt'
    mine.write_text('n00/my_pick.JPEG 0\n')
    cmd = ['--train-list', train_list, '--percent', '10', '--num-per-class', '2', '--out-dir',
           meta]
    with pytest.raises(SystemExit) as exc:
        run_script('make_semi_subsets.py', *cmd)
    assert exc.value.code == 2
    assert capsys.readouterr().err == (f'make_semi_subsets.py: error: {mine} exists and holds '
                                       'other lines than this subset: pass --overwrite to replace '
                                       'it, or another --out-dir (nothing was written)\n')
    assert mine.read_text() == 'n00/my_pick.JPEG 0\n'
    assert sorted(os.listdir(meta)) == ['train_10percent.txt']
    run_script('make_semi_subsets.py', *cmd, '--overwrite')
    written = {name: (meta / name).read_text() for name in os.listdir(meta)}
    assert sorted(written) == ['train_10percent.txt', 'train_2perclass.txt']
    assert len(written['train_10percent.txt'].splitlines()) == 3  # 1 of 10 per class
    capsys.readouterr()
    run_script('make_semi_subsets.py', *cmd)  # the same lines again: a rerun is fine
    out = capsys.readouterr().out
    assert out.count('kept ') == 2 and 'wrote' not in out  # the files were left as they were
    assert {name: (meta / name).read_text() for name in os.listdir(meta)} == written


def test_semi_subsets_unwritable_out_dir_is_one_line(train_list, tmp_path, capsys):
    """An --out-dir under a file, or one that cannot be written, was a traceback."""
    under_file = osp.join(train_list, 'meta')
    read_only = tmp_path / 'read_only'
    read_only.mkdir()
    read_only.chmod(0o555)
    unwritable = str(read_only / 'meta') if not os.access(read_only, os.W_OK) else \
        '/sys/genview-test-out'  # root ignores permission bits: sysfs refuses new files
    for out_dir, problem in ((under_file, f'{train_list} is a file, not a folder'),
                             (unwritable, 'no file can be created in ')):
        with pytest.raises(SystemExit) as exc:
            run_script('make_semi_subsets.py', '--train-list', train_list, '--percent', '10',
                       '--out-dir', out_dir)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f'make_semi_subsets.py: error: --out-dir {out_dir!r}: {problem}')
        assert err.endswith(': pass a writable folder (nothing was written)')
        assert not osp.exists(out_dir)


def test_an_odd_pickle_is_a_checkpoint_error(tmp_path):
    """A meta value whose unpickling raises TypeError ('Cannot unpickle a scalar with object
    dtype') escaped read_checkpoint's error handling as a traceback. (The object dtype is
    refused while unpickling now, genview_mm.compat: one line too.)"""
    import numpy as np

    class Scalar:
        def __reduce__(self):
            return np._core.multiarray.scalar, (np.dtype('O'), 'hello')

    path = str(tmp_path / 'odd.pth')
    torch.save({'state_dict': {}, 'meta': Scalar()}, path)
    with pytest.raises(CheckpointError, match=r"could not be read \(genview_mm refuses numpy "
                       r"dtype 'O8' in a checkpoint"):
        read_checkpoint(path)


def test_a_newer_pickle_protocol_is_named_not_called_corrupt(tmp_path):
    """torch.save(..., pickle_protocol=3) is whole, but weights_only loading cannot read its
    opcodes: the message said 'truncated or corrupted: download it again', which cannot help."""
    from numpy1_checkpoints import runner_checkpoint
    path = str(tmp_path / 'p3.pth')
    torch.save(runner_checkpoint({'w': torch.zeros(2)}), path, pickle_protocol=3)
    with pytest.raises(CheckpointError, match=r'saved with a pickle protocol that weights_only '
                       r'loading cannot read; save it again'):
        read_checkpoint(path)


def test_convert_tool_into_a_name_that_is_not_utf8_prints_it(tmp_path):
    """A dst whose name is not UTF-8: with a strict stdout (a UTF-8 locale other than C.UTF-8)
    the closing 'wrote ... to DST' raised UnicodeEncodeError after the file was written (a
    traceback, exit 1)."""
    src = str(tmp_path / 'ssl.pth')
    torch.save({'state_dict': {'backbone.conv1.weight': torch.ones(2, 3, 1, 1),
                               'neck.fc.weight': torch.ones(2)}, 'meta': {}}, src)
    dst = osp.join(str(tmp_path), 'caf\udce9.pth')
    run = run_tool('convert_checkpoint.py', src, dst, env={'PYTHONIOENCODING': 'utf-8:strict'},
                   returncode=None)
    assert run.returncode == 0 and 'Traceback' not in run.stderr, run.stderr
    assert 'backbone tensors to ' + dst.replace('\udce9', '\\udce9') in run.stdout
    assert list(read_checkpoint(dst)['state_dict']) == ['backbone.conv1.weight']
