"""tools/benchmarks/bench_generator.py: arm O (official) against arm P (the runner) on the tiny
pipeline on CPU, every printed figure a number; and the real-size preset's published shapes,
built on the meta device (no weights)."""
import importlib.util
import os.path as osp
import re

import pytest


@pytest.fixture(scope='module')
def bench(repo_root):
    path = osp.join(repo_root, 'tools', 'benchmarks', 'bench_generator.py')
    spec = importlib.util.spec_from_file_location('bench_generator_tool', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)  # puts tools/benchmarks on sys.path
    return tool


def fields(line_start: str, out: str) -> dict:
    line = next(ln for ln in out.splitlines() if ln.startswith(line_start))
    return dict(kv.split('=', 1) for kv in line.split() if '=' in kv)


NUMBER = re.compile(r'^-?\d+(\.\d+)?$')


@pytest.mark.slow
def test_tiny_preset_prints_both_arms(bench, capsys, monkeypatch):
    made = []
    mkdtemp = bench.tempfile.mkdtemp
    monkeypatch.setattr(bench.tempfile, 'mkdtemp', lambda **kw: made.append(mkdtemp(**kw)) or
                        made[-1])
    assert bench.main(['--preset', 'tiny', '--images', '4', '--batch-size', '2', '--steps',
                       '2', '--output-size', '64', '--psnr-images', '2', '--host-images', '2',
                       '--threads', '1']) == 0
    out = capsys.readouterr().out
    head = fields('preset=', out)
    assert head['preset'] == 'tiny' and head['images'] == '4' and head['dtype'] == 'float32'
    # arm P as generate_views runs it on a CPU: PIL output (the tensor path was forced, its
    # torch resize taking 6.5 ms per image of the main thread that a CPU run never spends)
    assert head['output'] == 'pil'
    assert float(head['gflop_per_image']) > 0 and float(head['peak_tflops']) > 0
    for arm in ('O', 'P'):
        row = fields(f'arm={arm} ', out)
        for key in ('images_per_s', 'ms_per_image', 'mfu_pct', 'peak_mem_mib'):
            assert NUMBER.match(row[key]), (arm, key, row[key])
        assert float(row['images_per_s']) > 0
        assert float(row['ms_per_image']) == pytest.approx(1e3 / float(row['images_per_s']),
                                                           rel=0.01)
        host = fields(f'host arm={arm} ', out)
        assert float(host['host_ms_per_image']) >= 0 and NUMBER.match(
            host['host_wall_ms_per_image'])
    ratio = fields('ratio_p_over_o=', out)
    for key in ('ratio_p_over_o', 'psnr_p_to_o_db', 'p_pipeline_calls'):
        assert NUMBER.match(ratio[key]), (key, ratio[key])
    # same seeds, levels and weights: P reproduces O up to batching, resize and JPEG rounding
    assert float(ratio['psnr_p_to_o_db']) > 30 and ratio['level_mismatches'] == '0'
    assert ratio['constant_outputs_o'] == ratio['constant_outputs_p'] == '0'
    levels = dict(kv.split(':') for kv in ratio['p_levels'].split(','))
    assert sum(map(int, levels.values())) == 4 and ratio['p_padded_rows'] == '0'
    assert ratio['p_pipeline_calls'] == '2'  # counted: one call per loaded batch of 2
    ref = fields('psnr_o_fp16_to_o_fp32_db=', out)
    assert ref['psnr_images'] == '2' and float(ref['psnr_p_to_o_same_images_db']) > 30
    assert NUMBER.match(ref['psnr_o_fp16_to_o_fp32_db'])
    # printed as measured: a run cut short by its timeout keeps the arms' lines
    order = [ln.split('=', 1)[0] for ln in out.splitlines() if '=' in ln]
    assert order == ['preset', 'arm', 'arm', 'ratio_p_over_o', 'host arm', 'host arm',
                     'psnr_o_fp16_to_o_fp32_db'], order
    assert len(made) == 1 and not osp.exists(made[0])  # its work folder went (one was left)


def test_the_reference_psnr_names_the_dtypes_it_compares(bench, capsys, monkeypatch):
    """bfloat16 arms are compared with an fp32 run of arm O: the line said fp16; and their MFU
    on a CPU is against the bfloat16 matmul rate (it was the float32 one)."""
    import generator_arms
    import torch
    peaks = []

    def peak(n=1024, repeats=3, dtype=torch.float32):
        peaks.append(dtype)
        return 0.5 if dtype == torch.bfloat16 else 2.0
    monkeypatch.setattr(generator_arms, 'cpu_matmul_tflops', peak)
    assert bench.main(['--preset', 'tiny', '--images', '2', '--batch-size', '2', '--steps',
                       '1', '--output-size', '32', '--psnr-images', '1', '--host-images', '1',
                       '--threads', '1', '--dtype', 'bfloat16']) == 0
    out = capsys.readouterr().out
    assert fields('preset=', out)['dtype'] == 'bfloat16'
    assert peaks == [torch.bfloat16] and fields('preset=', out)['peak_tflops'] == '0.500'
    assert NUMBER.match(fields('psnr_o_bf16_to_o_fp32_db=', out)['psnr_o_bf16_to_o_fp32_db'])
    assert 'psnr_o_fp16' not in out


def test_bad_counts_and_a_missing_gpu_are_usage_errors(bench, capsys, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for argv, shown in ((['--images', '0'], 'must be at least 1: --images 0'),
                        (['--batch-size', '-2'], 'must be at least 1: --batch-size -2'),
                        (['--device', 'cuda'], '--device cuda: no CUDA device here'),
                        # taken as the defaults (all threads; the H100 peak or the CPU's)
                        (['--threads', '0'], 'must be at least 1: --threads 0'),
                        # a traceback after the pipelines were built (real size: minutes)
                        (['--output-size', '0'], 'must be at least 1: --output-size 0'),
                        (['--peak-tflops', '0'], '--peak-tflops must be > 0, got 0.0'),
                        # an fp32 run's MFU was taken against the dense fp16 peak
                        (['--device', 'cuda', '--dtype', 'float32'], '--dtype float32 on '
                         "CUDA: pass --peak-tflops, the device's peak for it")):
        with pytest.raises(SystemExit) as exc:
            bench.parse_args(argv)
        assert exc.value.code == 2 and shown in capsys.readouterr().err
    assert bench.parse_args(['--preset', 'real-size', '--dry-run', '--device', 'cuda']).dry_run


@pytest.mark.slow
def test_real_size_code_path_on_shrunk_configs(bench, capsys, monkeypatch):
    """The real-size preset's building, fp16 taming and both arms, on its published configs
    shrunk to CPU size (the full size needs a GPU)."""
    import unclip_real_size
    full = unclip_real_size.load_configs()

    def shrunk(path=None):
        c = {k: dict(v) for k, v in full.items()}
        c['unet'].update(block_out_channels=[32, 64, 64, 64], attention_head_dim=[2, 4, 4, 4],
                         cross_attention_dim=32, projection_class_embeddings_input_dim=64,
                         sample_size=8, layers_per_block=1)
        c['vae'].update(block_out_channels=[32] * 4, layers_per_block=1)
        for name in ('image_encoder', 'text_encoder'):
            c[name].update(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4)
        c['image_encoder']['projection_dim'] = 32
        c['image_normalizer'] = {'embedding_dim': 32}
        return c
    monkeypatch.setattr(unclip_real_size, 'load_configs', shrunk)
    assert bench.main(['--preset', 'real-size', '--images', '2', '--batch-size', '2',
                       '--steps', '1', '--output-size', '64', '--psnr-images', '1',
                       '--threads', '1']) == 0
    out = capsys.readouterr().out
    head = fields('preset=', out)
    assert head['preset'] == 'real-size' and head['weight_scale'] == '1'
    assert NUMBER.match(fields('ratio_p_over_o=', out)['psnr_p_to_o_db'])


def test_real_size_dry_run_has_the_published_shapes(bench, capsys):
    assert bench.main(['--preset', 'real-size', '--dry-run']) == 0
    out = capsys.readouterr().out
    unet = fields('unet ', out)
    assert unet['blocks'] == '320,640,1280,1280'
    assert unet['cross_attention_dim'] == '1024' and unet['class_embed_input'] == '2048'
    assert unet['sample_size'] == '96' and 860e6 < int(unet['params']) < 880e6
    assert 'vae blocks=128,256,512,512 scaling_factor=0.18215' in out
    enc = fields('image_encoder ', out)
    assert (enc['hidden'], enc['layers'], enc['patch'], enc['projection']) == (
        '1280', '32', '14', '1024')
    assert 600e6 < int(enc['params']) < 660e6  # OpenCLIP ViT-H/14 vision tower
    text = fields('text_encoder ', out)
    assert (text['hidden'], text['layers']) == ('1024', '23')
    assert 'generated size=768' in out
    assert bench.main(['--preset', 'tiny', '--dry-run']) == 2


def test_host_clock_counts_nested_host_work_once(bench):
    """Host time = wall - device sections + host work nested in them; host work outside
    any device section is not added again."""
    import time

    import torch
    from generator_arms import HostClock
    clock = HostClock(torch.device('cpu'))
    host = clock.host_fn(lambda: time.sleep(0.02))
    device = clock.device_fn(lambda: (time.sleep(0.05), host()))
    t0 = time.perf_counter()
    device()
    host()  # outside: part of the wall time already
    wall = time.perf_counter() - t0
    assert clock.nested_host_s == pytest.approx(0.02, abs=0.015)
    assert clock.device_s == pytest.approx(0.07, abs=0.03)
    assert clock.host_s(wall) == pytest.approx(0.04, abs=0.02)


def test_host_clock_cpu_time_leaves_out_waits(bench):
    """On the CPU clock a wait (sleep) costs nothing and busy host work counts, also nested in
    a device section; busy device work is taken out."""
    import time

    import torch
    from generator_arms import HostClock

    def busy(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass
    clock = HostClock(torch.device('cpu'))
    host = clock.host_fn(lambda: busy(0.03))
    device = clock.device_fn(lambda: (busy(0.05), host(), time.sleep(0.05)))
    c0 = time.thread_time()
    device()
    time.sleep(0.05)  # a wait outside: wall time, no CPU time
    busy(0.02)  # host work outside
    cpu = time.thread_time() - c0
    assert clock.nested_host_cpu_s == pytest.approx(0.03, abs=0.01)
    assert clock.device_cpu_s == pytest.approx(0.08, abs=0.015)
    assert clock.host_cpu_s(cpu) == pytest.approx(0.05, abs=0.015)


def test_host_clock_measures_its_own_thread_only(bench):
    """The prefetch thread's preprocessing, wrapped as host work, was added to the main
    thread's host time whenever the main thread was in a device section then."""
    import threading
    import time

    import torch
    from generator_arms import HostClock
    clock = HostClock(torch.device('cpu'))
    host = clock.host_fn(lambda: time.sleep(0.03))
    other = threading.Thread(target=lambda: (host(), clock.device_fn(host)()))
    clock.device_fn(lambda: (other.start(), other.join()))()
    assert clock.nested_host_s == 0 and clock.nested_host_cpu_s == 0
    assert clock.device_s == pytest.approx(0.06, abs=0.03)  # the main thread's wait


@pytest.mark.parametrize('device', ['cpu', 'meta'])
def test_output_resizing_is_host_work_on_a_cpu(bench, device):
    """to_uint8 (the resize to the output size) and clip_pixels were counted as device work on
    a CPU too, where they run on the main thread as arm O's PIL resize does (host time there):
    P's CPU host time left out 6.5 ms per image."""
    import types

    import torch
    from generator_arms import HostClock, instrument_project

    import genview_mm.generation.generator as module
    saved = {}

    def patch(obj, name, value):
        saved.setdefault((id(obj), name), (obj, name, getattr(obj, name)))
        setattr(obj, name, value)
    clock = HostClock(torch.device(device))
    gen = types.SimpleNamespace(encoder=types.SimpleNamespace(encode=lambda x: x))
    try:
        instrument_project(gen, clock, patch)
        clock.device = torch.device('cpu')  # nothing to synchronise
        module.to_uint8(torch.zeros(1, 3, 4, 4), 2)
        on_device = clock.device_s
    finally:
        for obj, name, old in saved.values():
            setattr(obj, name, old)
    assert (on_device > 0) == (device != 'cpu')
    assert clock.nested_host_s == 0  # outside any device section: host time already


def test_attention_is_counted_on_a_cpu(bench):
    """On a CPU, SDPA ran the flash kernel, which torch's flop counter has no formula for:
    the count (and the CPU MFU) left attention out."""
    import torch
    import torch.nn.functional as F
    from generator_arms import counted_attention
    from torch.utils.flop_counter import FlopCounterMode
    q = torch.randn(1, 2, 64, 32)
    with FlopCounterMode(display=False) as counter, counted_attention(torch.device('cpu')):
        F.scaled_dot_product_attention(q, q, q)
    assert counter.get_total_flops() == 2 * 2 * (2 * 64 * 64 * 32)  # QK^T and AV


@pytest.mark.slow
def test_calls_that_ran_out_of_memory_are_not_counted(bench, capsys, monkeypatch):
    """P's pipeline calls were counted before they ran: a call that ran out of memory (and was
    redone in halves) counted as a call, and its rows as padding."""
    import torch

    from genview_mm.generation import AdaptiveNoiseGenerator
    run, pairs = AdaptiveNoiseGenerator._run, []

    def once_out_of_memory(self, embeds, levels, seeds, **kw):
        if len(seeds) == 2:
            pairs.append(1)
            if len(pairs) == 2:  # the first call of 2 of arm P (the warm-up made one before)
                raise torch.OutOfMemoryError('CUDA out of memory (injected)')
        return run(self, embeds, levels, seeds, **kw)

    monkeypatch.setattr(AdaptiveNoiseGenerator, '_run', once_out_of_memory)
    assert bench.main(['--preset', 'tiny', '--images', '4', '--batch-size', '2', '--steps',
                       '1', '--output-size', '32', '--psnr-images', '1', '--host-images', '1',
                       '--threads', '1', '--output', 'tensor']) == 0  # the GPU's path
    out = capsys.readouterr().out
    ratio = fields('ratio_p_over_o=', out)
    assert fields('preset=', out)['output'] == 'tensor'
    assert len(pairs) == 2  # one call of 2 ran out of memory: the limit went down to 1
    assert (ratio['p_pipeline_calls'], ratio['p_padded_rows']) == ('4', '0')


def test_each_arm_gets_its_own_peak_memory_on_cpu(bench):
    """On CPU the reset did nothing and the peak was the process's lifetime one: arm P's
    printed peak could never be below arm O's (1030 vs 1036 MiB, both mostly arm O's)."""
    import torch
    from generator_arms import peak_memory_mib, reset_peak_memory
    cpu = torch.device('cpu')
    big = torch.ones(256 * 2 ** 20 // 4)  # 256 MiB touched
    high = peak_memory_mib(cpu)
    del big
    reset_peak_memory(cpu)
    assert peak_memory_mib(cpu) < high - 128
