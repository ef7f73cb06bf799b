"""Every command of README.md is checked, so the README cannot drift from the code.

The README is read from the repository root (what is committed). Its commands
(tests/docs/readme_parse.py) are checked without running them (readme_checks.py): our tools
and scripts exist and take the options and arguments written; ``hf download`` and torchrun take
theirs; the configs named exist, README config blocks load or equal their file, and the
configs that commands train or test with load with the command's ``--cfg-options``
(readme_configs.py). A ``$ `` transcript is run, and must print what the README shows.
"""
import subprocess
from pathlib import Path

import pytest

from readme_checks import (
    BIN,
    check_hf_commands,
    check_inline_options,
    check_repo_paths,
    check_script_commands,
    check_tool_commands,
    check_unknown,
)
from readme_configs import check_command_configs, check_config_blocks
from readme_parse import classify, commands, fenced_blocks, logical_lines, split
from tool_help import ROOT, environment, external_options, probe, tools, warm

MARKDOWN = (ROOT / 'README.md').read_text()
BLOCKS, PROSE = fenced_blocks(MARKDOWN)
COMMANDS = commands(MARKDOWN)
MOCOV2 = 'configs/genview_mocov2_r50_in1k.py'


@pytest.fixture(scope='module')
def probes():
    """``--help`` of every tool, once, four at a time (a fresh interpreter each: the tests
    that need them all are marked slow)."""
    warm(tools())


def report(problems):
    return '\n' + '\n'.join(problems)


def test_every_bash_line_is_a_command_of_a_known_kind():
    for block in (b for b in BLOCKS if b.lang == 'bash'):
        lines = [n for n, line in logical_lines(block.text, block.line) if split(line)]
        assert lines and {c.line for c in COMMANDS if c.source == 'bash'} >= set(lines)
    problems = check_unknown(COMMANDS)
    assert not problems, report(problems)
    kinds = {classify(c).kind for c in COMMANDS}
    assert kinds >= {'python-tool', 'torchrun', 'bash-script', 'hf'}  # the parser finds each


@pytest.mark.slow
def test_tool_commands_use_existing_tools_and_options(probes):
    problems = check_tool_commands(COMMANDS)
    assert not problems, report(problems)


@pytest.mark.slow
def test_script_commands_parse_and_get_their_arguments(probes):
    problems = check_script_commands(COMMANDS)
    assert not problems, report(problems)


def test_hf_download_and_no_huggingface_cli():
    problems = check_hf_commands(COMMANDS)
    assert not problems, report(problems)
    assert any(classify(c).kind == 'hf' for c in COMMANDS)
    for path in [ROOT / 'README.md', *ROOT.glob('genview_mm/**/*.py'), *ROOT.glob('tools/**/*')]:
        if path.is_file():
            assert 'huggingface-cli' not in path.read_text(errors='replace'), path


@pytest.mark.slow
def test_options_named_in_the_prose_exist(probes):
    known = {'torchrun': external_options(str(BIN / 'torchrun')),
             'hf download': external_options(str(BIN / 'hf'), 'download')}
    known.update({Path(tool).name: probe(tool).options for tool in tools()})
    problems = check_inline_options(PROSE, known)
    assert not problems, report(problems)


def test_paths_of_the_repository_exist():
    problems = check_repo_paths(MARKDOWN)
    assert not problems, report(problems)


def test_config_blocks_and_command_configs_load(tmp_path):
    problems, written = check_config_blocks(BLOCKS, tmp_path)
    assert not problems, report(problems)
    assert not str(tmp_path).startswith(str(ROOT))
    assert 'my_project/my_genview.py' in written  # used by a command below
    problems = check_command_configs(COMMANDS, written)
    assert not problems, report(problems)


@pytest.mark.slow
def test_transcripts_print_what_the_readme_shows(tmp_path):
    """A ``$ `` command runs from a fresh folder that holds only configs/ and tools/ (nothing
    downloaded, nothing cached, offline) and prints exactly the lines the README shows."""
    transcripts = [c for c in COMMANDS if c.source == 'text']
    assert transcripts
    for name in ('configs', 'tools'):
        (tmp_path / name).symlink_to(ROOT / name)
    env = dict(environment(), HF_HOME=str(tmp_path / 'hf'))
    for command in transcripts:
        proc = subprocess.run(['bash', '-c', command.text], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        printed = (proc.stdout + proc.stderr).rstrip('\n').splitlines()
        assert printed == command.output, f'{command.where}\n{proc.stdout}{proc.stderr}'


# The checker can fail: each kind of drift in a small README of its own.
BAD = {
    'wrong option': ('```bash\npython tools/train.py CONFIG --wrok-dir x\n```\n',
                     '--wrok-dir is not an option of tools/train.py'),
    'missing tool': ('run `python tools/trian.py CONFIG`.\n', 'tools/trian.py does not exist'),
    'torchrun option': ('```bash\ntorchrun --nproc 8 tools/generate_views.py SRC \\\n'
                        '    --pca P --out-dir O\n```\n', '--nproc is not an option of torchrun'),
    'forwarded option': ('```bash\nbash tools/dist_train.sh CONFIG 8 --resum\n```\n',
                         '--resum is not an option of tools/train.py'),
    'too few arguments': ('```bash\nbash tools/dist_test.sh CONFIG 8\n```\n',
                          'tools/dist_test.sh needs at least 3 arguments, the command gives 2'),
    'unknown command': ('```bash\nsrun -p gpu python tools/train.py CONFIG\n```\n',
                        'a command the checker does not know'),
    'hf option': ('```text\n-> hf download org/model --local_dir D\n```\n',
                  '--local_dir is not an option of hf download'),
}


@pytest.mark.parametrize('case', sorted(BAD))
def test_checker_finds_drift(case):
    markdown, expected = BAD[case]
    found = commands(markdown)
    problems = (check_tool_commands(found) + check_script_commands(found)
                + check_hf_commands(found)
                + [p for p in check_unknown(found) if 'ALLOWED entry' not in p])
    assert len(problems) == 1 and expected in problems[0], problems


def test_checker_finds_drifted_configs(tmp_path):
    markdown = ('`configs/genview_nope.py` and `genview_mm::_base_/nope.py`\n'
                '```bash\nbash tools/dist_train.sh configs/demo/mocov2_r18_tiny_cpu.py 2 '
                '--cfg-options model.backbon.depth=18\n```\n```python\n'
                + (ROOT / MOCOV2).read_text().replace("'GenViewPairHook'", "'PairHook'")
                + '```\n')
    assert [p.split(': ', 1)[1] for p in check_repo_paths(markdown)] == [
        'configs/genview_nope.py does not exist', 'genview_mm::_base_/nope.py does not exist']
    blocks, _ = fenced_blocks(markdown)
    problems, written = check_config_blocks(blocks, tmp_path)
    assert len(problems) == 1 and "+custom_hooks = [dict(type='PairHook')]" in problems[0]
    problems = check_command_configs(commands(markdown), written)
    assert len(problems) == 1 and '--cfg-options model.backbon.depth: no such key' in problems[0]



def test_checker_finds_drifted_inline_options():
    prose = ('`--steps`, `--stpes` and `generate_views.py ... --rank i\n--wrold-size 2`,'
             ' `--dependency=afterok`\n')
    known = {'generate_views.py': probe('tools/generate_views.py').options}
    problems = check_inline_options(prose, known)
    assert [p.split('-> ')[1] for p in problems] == [
        '--stpes is not an option of any program the README runs',
        '--wrold-size is not an option of generate_views.py']
