"""tools/benchmarks/bench_scorer.py: baseline and GenView steps with both scorers in one run, on
CPU with tiny stand-ins of the scorer encoders; and the real settings it reads."""
import importlib.util
import os.path as osp
import re

import pytest


@pytest.fixture(scope='module')
def bench(repo_root):
    """The tool module and its model pieces (``scorer_step``)."""
    path = osp.join(repo_root, 'tools', 'benchmarks', 'bench_scorer.py')
    spec = importlib.util.spec_from_file_location('bench_scorer_tool', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)  # puts tools/benchmarks on sys.path
    import scorer_step
    return tool, scorer_step


@pytest.fixture
def tiny_encoders(bench, monkeypatch):
    """Both scorer names, each a tiny random model of its kind (timm ConvNeXt, CLIP ViT)."""
    _, step = bench
    monkeypatch.setitem(step.ENCODERS, 'convnext',
                        dict(timm=dict(model_name='test_convnext', input_size=64)))
    monkeypatch.setitem(step.ENCODERS, 'vit-b32', dict(clip=dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, patch_size=8, projection_dim=16)))


def ratio_rows(out: str, unit: str):
    """{(scorer, what): (baseline, genview, ratio)} from the printed ratio lines; ``unit`` is a
    pattern with one group (``what``)."""
    pattern = (r'genview\[([\w-]+)\]: ' + unit + r' baseline=([\d.]+) genview=([\d.]+) '
               r'overhead ratio=([\d.]+) \([+-][\d.]+%\)')
    return {m.groups()[:2]: tuple(float(v) for v in m.groups()[2:])
            for m in re.finditer(pattern, out)}


ARGS = ['--preset', 'cpu', '--scorer', 'convnext', 'vit-b32', '--batch', '2', '--warmup', '0',
        '--device', 'cpu', '--impl', 'optimised']


def test_times_both_scorers_against_one_baseline(bench, tiny_encoders, capsys):
    tool, _ = bench
    tool.main(ARGS + ['--steps', '2', '--clock', 'process'])
    out = capsys.readouterr().out
    assert 'preset=cpu method=MoCo batch=2 size=64 device=cpu amp=False optim=SGD' in out
    assert 'clock=process' in out
    rows = ratio_rows(out, r'ms/step \((median|min) of 2\)')
    assert sorted(rows) == [('convnext', 'median'), ('convnext', 'min'),
                            ('vit-b32', 'median'), ('vit-b32', 'min')]
    for stat in ('median', 'min'):  # one shared baseline per statistic
        assert rows['convnext', stat][0] == rows['vit-b32', stat][0]
    for base, gv, ratio in rows.values():
        assert base > 0 and gv > 0
        # the times are printed to 0.1 ms: the ratio of the printed numbers is off by at most
        # 0.05 ms in each, relative to the baseline
        assert ratio == pytest.approx(gv / base, abs=0.05 * (1 + ratio) / base + 2e-3)


def test_flops_count_the_scorer(bench, tiny_encoders, capsys):
    tool, _ = bench
    tool.main(ARGS + ['--method', 'MoCoV3', '--flops'])
    out = capsys.readouterr().out
    assert 'method=MoCoV3' in out
    rows = {k[0]: v for k, v in ratio_rows(out, r'(GFLOPs/step)').items()}
    assert sorted(rows) == ['convnext', 'vit-b32']
    for base, gv, ratio in rows.values():
        assert gv > base > 0  # the scorer's forward on both views is counted
        assert ratio == pytest.approx(gv / base, abs=2e-3)


def test_real_settings_come_from_the_configs(bench):
    _, step = bench
    v2, v3 = step.real_setup('MoCo'), step.real_setup('MoCoV3', batch=4)
    assert (v2['batch'], v2['size'], v2['model']['type'], v2['model']['queue_len']) == (
        32, 224, 'MoCo', 65536)
    assert v2['optim_wrapper']['type'] == 'OptimWrapper'
    assert (v3['batch'], v3['model']['type'], v3['optim_wrapper']['type'],
            v3['optim_wrapper']['optimizer']['type']) == (4, 'MoCoV3', 'AmpOptimWrapper', 'LARS')
    assert v3['model']['backbone']['norm_cfg']['type'] == 'BN'  # SyncBN needs several processes
    assert 'scorer' not in v2['model'] and 'scorer' not in v3['model']


def test_scorer_shapes_are_the_real_ones(bench, repo_root):
    from mmengine.config import Config
    from transformers import CLIPVisionConfig
    _, step = bench
    cfg = Config.fromfile(osp.join(repo_root, 'configs', '_base_', 'scorers',
                                   'convnext_base_w_laion2b_augreg.py'))
    assert step.ENCODERS['convnext']['timm'] == {
        k: cfg.convnext_scorer.encoder[k] for k in ('model_name', 'input_size')}
    default = CLIPVisionConfig()  # transformers' default is ViT-B/32's shape
    assert {k: getattr(default, k) for k in step.VIT_B32} == step.VIT_B32


@pytest.mark.parametrize('argv,message', [
    (['--batch', '1'], '--batch must be at least 2'),
    (['--clock', 'process', '--device', 'cuda'], '--clock process needs --device cpu'),
    (['--mode', 'scorer', '--pairs', '0'], '--blocks, --reps and --pairs must be at least 1'),
])
def test_bad_arguments_are_refused(bench, capsys, argv, message):
    tool, _ = bench
    with pytest.raises(SystemExit):
        tool.parse_args(argv)
    assert message in capsys.readouterr().err


def test_batch_that_does_not_divide_the_moco_queue_is_refused(bench):
    tool, _ = bench
    with pytest.raises(SystemExit, match=r'queue \(65536\) must be a multiple'):
        tool.main(['--preset', 'gpu', '--device', 'cpu', '--batch', '3'])


@pytest.mark.parametrize('cuda', [False, True])
def test_process_clock_without_device_measures_the_cpu(bench, capsys, monkeypatch, cuda):
    """--clock process without --device means the CPU, on any machine (it was refused on a
    machine without a GPU, then on one with a GPU, where the documented CPU commands failed);
    --device cuda with it is refused, and so is --device cuda where there is none."""
    import torch
    tool, _ = bench
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    args = tool.parse_args(['--clock', 'process'])
    assert (args.clock, args.device) == ('process', 'cpu')
    with pytest.raises(SystemExit):
        tool.parse_args(['--clock', 'process', '--device', 'cuda'])
    assert '--clock process needs --device cpu' in capsys.readouterr().err
    if not cuda:
        with pytest.raises(SystemExit):
            tool.parse_args(['--device', 'cuda'])
        assert '--device cuda: no CUDA device here (pass --device cpu' in \
            capsys.readouterr().err


def test_step_mode_times_official_and_optimised_scorers(bench, tiny_encoders, capsys):
    tool, _ = bench
    tool.main(['--preset', 'cpu', '--method', 'MoCoV3', '--scorer', 'convnext', '--batch', '2',
               '--warmup', '0', '--steps', '1', '--device', 'cpu', '--set', 'channels_last=True'])
    out = capsys.readouterr().out
    rows = ratio_rows(out, r'ms/step \((median|min) of 1\)')
    assert sorted(rows) == [('convnext', 'median'), ('convnext', 'min'),
                            ('convnext-official', 'median'), ('convnext-official', 'min')]
    assert ('genview[convnext] scorer: autocast=False cast_weights=False channels_last=True '
            'compile=False cuda_graph=False') in out


def scorer_rows(out: str) -> dict:
    """{(pairs, arm): (pairs/s, MFU %)} and {(pairs, arm): (err_q, err_w)} of --mode scorer."""
    rates = {(int(p), a): (float(r), float(m)) for p, a, r, m in re.findall(
        r'pairs=(\d+) arm=(\w) pairs/s=([\d.]+) MFU=([\d.]+)%', out)}
    errors = {(int(p), a): (float(q), float(w)) for p, a, q, w in re.findall(
        r'pairs=(\d+) arm=(\w) err_q=([\d.e+-]+) err_w=([\d.e+-]+)', out)}
    return rates, errors


def run_scorer_mode(tool, capsys, *extra):
    tool.main(['--mode', 'scorer', '--scorer-model', 'test_convnext', '--size', '64',
               '--pairs', '2', '3', '--device', 'cpu', '--warmup', '1', '--blocks', '2',
               '--reps', '1', '--peak-tflops', '0.001', *extra])
    return capsys.readouterr().out


def check_scorer_report(out: str, compile: bool) -> None:
    assert 'mode=scorer model=test_convnext size=64 device=cpu amp=torch.bfloat16' in out
    rates, errors = scorer_rows(out)
    assert sorted(rates) == sorted(errors) == [(2, 'O'), (2, 'P'), (3, 'O'), (3, 'P')]
    flops = float(re.search(r'GFLOP/image=([\d.]+)', out).group(1)) * 1e9
    for pairs in (2, 3):
        ratio = float(re.search(rf'pairs={pairs} ratio P/O=([\d.]+)', out).group(1))
        assert ratio == pytest.approx(rates[pairs, 'P'][0] / rates[pairs, 'O'][0], rel=0.02)
        for arm in 'OP':  # MFU = 2 images per pair x FLOPs per image x pairs/s / peak
            assert rates[pairs, arm][1] == pytest.approx(
                100 * 2 * flops * rates[pairs, arm][0] / 1e9, rel=0.05, abs=0.06)
        assert errors[pairs, 'O'][0] > 0  # bf16 autocast moves the official scores
        assert re.search(rf'pairs={pairs} first call \(compile, capture; wall\) '
                         r'O=[\d.]+ s P=[\d.]+ s; then warm-up O=[\d.]+ s P=[\d.]+ s', out)
        verdict = re.search(rf"pairs={pairs} P within the accuracy rule \(errors <= O's\): "
                            r'(yes|no) \(P/O error ratio q=([\d.]+) w=([\d.]+)\)', out)
        q_ratio, w_ratio = float(verdict.group(2)), float(verdict.group(3))
        assert q_ratio == pytest.approx(errors[pairs, 'P'][0] / errors[pairs, 'O'][0], rel=0.01)
        assert w_ratio == pytest.approx(errors[pairs, 'P'][1] / errors[pairs, 'O'][1], rel=0.01)
        worst = max(q_ratio, w_ratio)  # printed to 3 decimals: 1.000 may go either way
        assert verdict.group(1) == ('yes' if worst <= 1 else 'no') or abs(worst - 1) < 1e-3
        assert (f'pairs={pairs} P: autocast=True cast_weights=True channels_last=True '
                f'compile={compile} cuda_graph=False') in out


def test_scorer_mode_reports_throughput_mfu_and_errors(bench, capsys):
    """The scorer's defaults (compile off): weights in bf16 and channels_last are bit-identical
    to the official path on CPU, so the strict rule holds."""
    tool, _ = bench
    out = run_scorer_mode(tool, capsys)
    check_scorer_report(out, False)
    assert out.count("P within the accuracy rule (errors <= O's): yes (P/O error ratio "
                     "q=1.000 w=1.000)") == 2


def test_one_pair_has_no_weight_error_ratio(bench):
    """One pair's weight is 1 on every path (N softmax over one score): both weight errors are
    0, and their ratio printed 'inf' as if P were infinitely worse than O."""
    import torch
    from scorer_speed import report
    ref = torch.tensor([0.5])
    result = dict(first=dict(O=1.0, P=1.0), warmup=dict(O=1.0, P=1.0),
                  block=dict(O=2.0, P=1.0),
                  q=dict(ref=ref, O=ref + 2e-3, P=ref + 1e-3))
    verdict = report(1, result, 4, 1e9, None)[-1]
    assert verdict == ("pairs=1 P within the accuracy rule (errors <= O's): yes (P/O error "
                       'ratio q=0.500 w=n/a (both 0))')
    result['q']['P'] = ref
    assert report(1, result, 4, 1e9, None)[-1].endswith('(P/O error ratio q=0.000 w=n/a '
                                                        '(both 0))')


@pytest.mark.slow
def test_scorer_mode_compiles_on_cpu(bench, capsys):
    tool, _ = bench
    check_scorer_report(run_scorer_mode(tool, capsys, '--set', 'compile=True'), True)
