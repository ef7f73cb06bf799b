"""Every command, path, link and config of the docs (README.md, docs/*.md) is real: checked
without running (doc_checks.py) but for ``$ `` transcripts, run; :data:`BAD` fails each check."""
import re
import subprocess

import pytest

from doc_checks import ALLOWED, doc_problems
from doc_parse import DOCS, HEAVY, ROOT, classify, probe, read, tools
from helpers import tool_env

PARSED = [read(name) for name in DOCS]
COMMANDS = [c for doc in PARSED for c in doc.commands]


def test_docs_tools_and_kinds_of_command_are_found():
    assert {'README.md', 'docs/installation.md', 'docs/benchmarks.md'} <= set(DOCS)
    assert {'tools/train.py', 'tools/genview_demo.py', 'tools/benchmarks/bench_scorer.py'} <= set(
        tools()) and not any('/_' in t for t in tools())  # argument modules are not tools
    assert len(PARSED[0].text.splitlines()) <= 200  # the README stays a front page
    calls = [(classify(c.text), c) for c in COMMANDS]
    assert {call.kind for call, _ in calls} >= {'tool', 'torchrun', 'script', 'hf', 'options',
                                                'unknown'}  # the parser finds each kind
    used = {p for _, c in calls for p in ALLOWED if re.fullmatch(p, c.text)}
    assert used == set(ALLOWED), f'stale ALLOWED entries: {set(ALLOWED) - used}'
    for path in [*ROOT.glob('*.md'), *ROOT.glob('docs/*.md'), *ROOT.glob('genview_mm/**/*.py'),
                 *ROOT.glob('tools/**/*')]:
        assert not path.is_file() or 'huggingface-cli' not in path.read_text(errors='replace')


@pytest.mark.slow
def test_docs_commands_paths_links_and_configs(tmp_path):
    problems = doc_problems(PARSED, tmp_path)
    assert not problems, '\n' + '\n'.join(problems)


@pytest.mark.slow
def test_transcripts_print_what_the_docs_show(tmp_path):
    """A ``$ `` command runs from a fresh folder that holds only configs/ and tools/ (nothing
    downloaded, nothing cached, offline) and prints exactly the lines the docs show."""
    transcripts = [c for c in COMMANDS if c.output is not None]
    assert transcripts
    for name in ('configs', 'tools'):
        (tmp_path / name).symlink_to(ROOT / name)
    for command in transcripts:
        proc = subprocess.run(['bash', '-c', command.text], cwd=tmp_path, capture_output=True,
                              env=tool_env(HF_HOME=str(tmp_path / 'hf')), text=True, timeout=300)
        printed = (proc.stdout + proc.stderr).rstrip('\n').splitlines()
        assert printed == command.output, f'{command.where}\n{proc.stdout}{proc.stderr}'


MOCOV2 = (ROOT / 'configs/genview_mocov2_r50_in1k.py').read_text()
BAD = {  # documents with drift of each kind, and what the checks say of them, in order
    'commands': ('```bash\npython tools/train.py CONFIG --wrok-dir x\ntorchrun --nproc 8 '
                 'tools/generate_views.py SRC \\\n  --pca P\nbash tools/dist_train.sh CONFIG 8 '
                 '--resum\nbash tools/dist_test.sh CONFIG 8\nsrun python tools/train.py CONFIG\n'
                 '```\n```text\n-> hf download org/model --local_dir D\n```\n',
                 ['--wrok-dir is not an option of tools/train.py',
                  '--nproc is not an option of torchrun', '--resum is not an option of tools/tr',
                  'tools/dist_test.sh needs at least 3 arguments, the command gives 2',
                  'a command the checker does not know', '--local_dir is not an option of hf']),
    'prose': ('`--steps`, `--stpes` and `generate_views.py ... --rank i\n--wrold-size 2`,'
              ' `--dependency=afterok`\n', ['--stpes is not an option of any program the docs',
                                            '--wrold-size is not an option of generate_views.py']),
    'paths': ('`configs/genview_nope.py`, `genview_mm::_base_/nope.py`, `genview_nap.py`\n# Top\n'
              '[a](docs/nope.md), [b](docs/installation.md#nope), [c](#top), [d](#tap)\n'
              'run `python tools/trian.py`\n',
              ['1: configs/genview_nope.py does not exist', '1: genview_mm::_base_/nope.py does',
               '1: genview_nap.py does not exist', '3: docs/nope.md does not exist',
               '3: docs/nope.md does not exist', '3: docs/installation.md#nope does not exist',
               '3: #tap does not exist', '4: tools/trian.py does not exist', 'BAD.md:4 (inline)']),
    'configs': ('```python\n# configs/genview_mocov2_r50_in1k.py\n'
                + MOCOV2.replace("'GenViewPairHook'", "'PairHook'") + '```\n'
                '```python\n# mine/x.py\n_base_ = "genview_mm::demo/mocov2_r18_tiny_cpu.py"\n'
                'model = dict(type=NoSuchModel)\n```\n```bash\nbash tools/dist_train.sh configs/'
                'demo/mocov2_r18_tiny_cpu.py 2 --cfg-options model.backbon.depth=18\n'
                'python tools/train.py mine/x.py --cfg-options model.type=MoCo\n```\n',
                ["+custom_hooks = [dict(type='PairHook')]",
                 "cannot be loaded (NameError: name 'NoSuchModel' is not defined)",
                 '--cfg-options model.backbon.depth: no such key',
                 'mine/x.py does not load with its --cfg-options']),
    'hooks': ('```python\n# mine/knn.py\n_base_ = "./demo/genview_mocov2_r18_tiny_cpu.py"\n'
              'custom_hooks = [dict(type="KNNMonitorHook", interval=1)]\n```\n'
              '```python\n# mine/knn_kept.py\n_base_ = "./demo/genview_mocov2_r18_tiny_cpu.py"\n'
              'custom_hooks = [*_base_.custom_hooks, dict(type="KNNMonitorHook", interval=1)]\n'
              '```\n```python\n# mine/swav.py\n_base_ = "./genview_swav_r50_in1k.py"\n'
              'custom_hooks = [dict(type="GenViewPairHook")]\n```\n',
              ["BAD.md:2 (python config block)\n    -> does not load: GenViewSettingError: "
               "custom_hooks ['KNNMonitorHook'] has no GenViewPairHook",  # the loader's check
               'BAD.md:12 (python config block)\n    -> custom_hooks drops SwAVHook of its base '
               'config: start the list with *_base_.custom_hooks']),  # any hook: the docs'
}


@pytest.mark.slow
@pytest.mark.parametrize('case', sorted(BAD))
def test_each_check_finds_its_drift(case, tmp_path):
    markdown, expected = BAD[case]
    problems = doc_problems([read('BAD.md', markdown)], tmp_path)
    assert len(problems) == len(expected) and all(map(str.__contains__, problems, expected)), \
        '\n'.join(problems)


@pytest.mark.slow
@pytest.mark.parametrize('tool', tools())
def test_help_imports_nothing_heavy(tool):
    """Tools parse their arguments before importing the heavy stack (``sys.modules`` read)."""
    result = probe(tool)
    assert result.code == 0, result.stderr
    assert result.help.startswith('usage: ') and '--help' in result.options
    assert result.imported == (), f'{tool} --help imported {result.imported}'


@pytest.mark.slow
def test_path_usage_errors_import_nothing_heavy(tmp_path):
    """A path a tool cannot write (or a missing input) is refused before the heavy imports,
    as docs/development.md says: make_semi_subsets.py and sample_extra_images.py imported
    genview_mm (torch; 7-11 s) before refusing them."""
    (tmp_path / 'src').mkdir()
    (tmp_path / 'pca.pth').write_text('x')
    blocked = '/sys/genview-test/x'  # no file can be created there, even as root
    cases = {
        'tools/make_semi_subsets.py': ['--train-list', str(tmp_path / 'pca.pth'), '--percent',
                                       '1', '--out-dir', blocked],
        'tools/sample_extra_images.py': [str(tmp_path / 'src'), '--out', blocked,
                                         '--imagenet', str(tmp_path)],
        'tools/generate_views.py': [str(tmp_path / 'src'), '--pca', str(tmp_path / 'pca.pth'),
                                    '--out-dir', blocked],
        'tools/fit_foreground_pca.py': [str(tmp_path / 'src'), '--out', blocked + '.pth'],
        'tools/train.py': [str(tmp_path / 'pca.pth'), '--work-dir', blocked],
    }
    for tool, args in cases.items():
        result = probe(tool, tuple(args))
        assert result.code == 2, (tool, result.stderr)
        assert 'no file can be created in /sys' in result.stderr.strip().splitlines()[-1], tool
        assert result.imported == (), f'{tool} imported {result.imported} before refusing'
    result = probe('tools/sample_extra_images.py', (str(tmp_path / 'src'), '--out',
                                                    str(tmp_path / 'l.txt'), '--imagenet',
                                                    str(tmp_path / 'none')))
    assert result.code == 2 and result.imported == ()
    assert 'ImageNet folder' in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_probe_sees_a_heavy_import(tmp_path):
    """The check can fail: a tool that imports torch before parsing is caught."""
    tool = tmp_path / 'eager.py'
    tool.write_text("import argparse\nimport torch  # noqa: F401\n\nif __name__ == '__main__':\n"
                    '    argparse.ArgumentParser().parse_args()\n')
    result = probe(str(tool))
    assert (result.code, result.imported) == (0, ('torch',)) and 'torch' in HEAVY


def test_generation_examples_use_the_layout_the_configs_read():
    """Every generation example (docs, the tools' --help, slurm_generate.sh, the preflight's
    fixes) writes the views where the configs read them and reads the generator's PCA from one
    place: tools/generate_views.py --help said ``--pca fg_pca.pth --out-dir data/genview``
    while the configs read data/genview/views/manifest.jsonl."""
    defaults = (ROOT / 'configs/_base_/genview_defaults.py').read_text()
    views = re.search(r"manifest='(data/[^']+)/manifest\.jsonl'", defaults)[1]
    expected = {'--out-dir': views, 'merge_manifests.py': views,
                '--pca': 'data/genview/pca/generator.pth'}
    files = [ROOT / name for name in DOCS] + sorted(
        p for pattern in ('tools/**/*.py', 'tools/*.sh', 'genview_mm/**/*.py')
        for p in ROOT.glob(pattern))
    seen, wrong = [], []
    for path in files:  # a command is one line once \-continuations and '..' '..' are joined
        text = re.sub(r"'\s*\n\s*'", '', re.sub(r'\\+\n[\s#]*', ' ', path.read_text()))
        for line in text.splitlines():
            if re.search(r'generate_views\.py|merge_manifests\.py|slurm_generate\.sh', line):
                for flag, value in re.findall(r'(--pca|--out-dir|merge_manifests\.py)[ =]+'
                                              r'([\w.][\w./-]*/[\w./-]*|[\w-]+\.pth)', line):
                    seen.append(flag)
                    if value.rstrip('.') != expected[flag]:
                        wrong.append(f'{path.relative_to(ROOT)}: {flag} {value}')
    assert not wrong, f'expected {expected}:\n' + '\n'.join(wrong)
    assert {'--out-dir', '--pca', 'merge_manifests.py'} <= set(seen) and len(seen) >= 12


def test_config_header_commands_keep_each_option_whole():
    """Three linear-probe headers split ``KEY=\\`` from its value on the next line: pasted,
    bash passed the key with an empty value and the path as a separate argument."""
    import glob
    import os.path as osp
    split = [f'{osp.relpath(path, ROOT)}:{n}'
             for path in sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                          recursive=True))
             for n, line in enumerate(open(path, encoding='utf-8'), 1)
             if line.lstrip().startswith('#') and line.rstrip().endswith('=\\')]
    assert split == []
