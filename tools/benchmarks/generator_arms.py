"""The two arms of ``bench_generator.py`` and what it measures about them.

Arm O, the official way: per image, PIL open, one pipeline call (``output_type='pil'``, the
image passed as is), PIL bicubic resize, JPEG save. Arm P: the project's runner
(``generate_views``) on the same files, seeds and noise levels, from source file to JPEG and
manifest row. :class:`HostClock` splits an arm's main-thread time into device work (model
calls, synchronised) and the rest (host time), on the wall clock and the thread's CPU clock.
"""
import glob
import os
import os.path as osp
import threading
import time
from typing import Any, Callable, Dict, List

import numpy as np
import torch


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class HostClock:
    """The main thread's time outside the model calls, on two clocks: wall time (waits for the
    prefetch thread and the writers included) and the main thread's own CPU time
    (``time.thread_time``: the host work it does, waits excluded). Wrapped device sections are
    synchronised before and after and taken out of both; host work nested in them (e.g.
    diffusers' PIL conversion inside the pipeline call) is put back; a host section outside
    any device section is host time already and is not counted twice. Only the thread that
    made the clock is measured: a wrapped call on the prefetch thread runs as it is (it was
    counted as the main thread's while the main thread was in a device section)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.depth, self.thread = device, 0, threading.get_ident()
        self.device_s = self.nested_host_s = self.device_cpu_s = self.nested_host_cpu_s = 0.0

    def device_fn(self, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            if threading.get_ident() != self.thread:
                return fn(*args, **kwargs)
            sync(self.device)
            t0, c0 = time.perf_counter(), time.thread_time()
            self.depth += 1
            try:
                out = fn(*args, **kwargs)
                sync(self.device)
            finally:
                self.depth -= 1
            if self.depth == 0:
                self.device_s += time.perf_counter() - t0
                self.device_cpu_s += time.thread_time() - c0
            return out
        return wrapper

    def host_fn(self, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            if self.depth == 0 or threading.get_ident() != self.thread:
                return fn(*args, **kwargs)
            sync(self.device)
            t0, c0 = time.perf_counter(), time.thread_time()
            out = fn(*args, **kwargs)
            self.nested_host_s += time.perf_counter() - t0
            self.nested_host_cpu_s += time.thread_time() - c0
            return out
        return wrapper

    def host_s(self, wall_s: float) -> float:
        """Main-thread wall time outside the model calls, of ``wall_s`` in all."""
        return wall_s - self.device_s + self.nested_host_s

    def host_cpu_s(self, thread_cpu_s: float) -> float:
        """Main-thread CPU time outside the model calls, of ``thread_cpu_s`` in all."""
        return thread_cpu_s - self.device_cpu_s + self.nested_host_cpu_s


def official_arm(pipe: Any, paths: List[str], keys: List[str], levels: Dict[str, int],
                 seeds: Dict[str, int], out_dir: str, steps: int, guidance: float,
                 size: int, clock: HostClock = None) -> None:
    """Arm O: one pipeline call per image, as the official script does."""
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    call = pipe if clock is None else clock.device_fn(pipe)
    for path, key in zip(paths, keys):
        img = Image.open(path).convert('RGB')
        gen = torch.Generator('cpu').manual_seed(seeds[key])
        out = call(image=img, noise_level=levels[key], generator=gen,
                   num_inference_steps=steps, guidance_scale=guidance,
                   output_type='pil').images[0]
        out = out.resize((size, size), Image.BICUBIC)
        out.save(osp.join(out_dir, osp.splitext(key)[0] + '.jpg'), quality=95)


def project_arm(gen: Any, items: List, out_dir: str, batch_size: int) -> Dict:
    """Arm P: the runner from source files to JPEGs and manifest rows."""
    from genview_mm.apis.generation.runner import generate_views
    return generate_views(items, gen, out_dir, rank=0, world_size=1, batch_size=batch_size,
                          ext='.jpg', quality=95, show_progress=False)


def instrument_project(gen: Any, clock: HostClock, monkeypatch: Callable) -> None:
    """Route the generator's device sections through ``clock`` (``monkeypatch(obj, name,
    value)`` sets an attribute and remembers the old one). The resize, quantisation and CLIP
    preprocessing of the outputs are device work on a GPU; on a CPU they are host work (counted
    as device time there, P's host time on CPU was 6.5 ms per image short), of the main thread
    for the tensor output and of the generator's ``host_threads`` pool for the PIL output (the
    main thread's wall time then holds the wait for it)."""
    import genview_mm.generation.generator as module
    on_device = clock.device.type != 'cpu'
    for name in ('call_mixed_levels', 'decode_latents', 'to_uint8', 'clip_pixels'):
        wrap = clock.device_fn if on_device or name in ('call_mixed_levels',
                                                         'decode_latents') else clock.host_fn
        if hasattr(module, name):
            monkeypatch(module, name, wrap(getattr(module, name)))
    monkeypatch(gen.encoder, 'encode', clock.device_fn(gen.encoder.encode))


def manifest_rows(out_dir: str) -> int:
    """Manifest rows written under ``out_dir`` (any ``*.jsonl``)."""
    rows = 0
    for path in glob.glob(osp.join(out_dir, '**', '*.jsonl'), recursive=True):
        with open(path) as f:
            rows += sum(1 for line in f if line.strip())
    return rows


def project_outputs(out_dir: str, keys: List[str]) -> Dict[str, str]:
    """{key: output JPEG} of arm P (its names are ``<stem>-<hash>.jpg`` mirroring the key)."""
    found = {}
    for key in keys:
        stem = osp.splitext(key)[0]
        hits = glob.glob(osp.join(out_dir, '**', glob.escape(stem) + '-*.jpg'), recursive=True)
        if len(hits) == 1:
            found[key] = hits[0]
    return found


def project_levels(out_dir: str) -> Dict[str, int]:
    """{key: noise level} arm P recorded in its manifest rows (the levels it generated at)."""
    from genview_mm.structures.manifest import read_rows
    return {row.key: row.noise_level
            for path in glob.glob(osp.join(out_dir, '**', '*.jsonl'), recursive=True)
            for row in read_rows(path) if row.ok}


def pipeline_bytes(pipe: Any) -> int:
    """Bytes of a pipeline's weights and buffers (its modules')."""
    modules = [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
    return sum(t.numel() * t.element_size() for m in modules
               for t in [*m.parameters(), *m.buffers()])


def constant_images(paths: List[str]) -> int:
    """How many of the images are one flat colour (a NaN-black or saturated output)."""
    from PIL import Image
    return sum(int(np.asarray(Image.open(p).convert('L')).std() == 0) for p in paths)


def psnr(a_path: str, b_path: str) -> float:
    """PSNR (dB) of two 8-bit images; 100 for identical ones."""
    from PIL import Image
    a = np.asarray(Image.open(a_path).convert('RGB'), np.float64)
    b = np.asarray(Image.open(b_path).convert('RGB'), np.float64)
    mse = float(((a - b) ** 2).mean())
    return 100.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def mean_psnr(pairs: List) -> float:
    return float(np.mean([psnr(a, b) for a, b in pairs])) if pairs else float('nan')


def counted_attention(device: torch.device):
    """A context in which torch's flop counter sees attention on ``device``: on a CPU, SDPA's
    math kernel (the CPU flash kernel has no flop formula: the count left attention out)."""
    from contextlib import nullcontext

    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel(SDPBackend.MATH) if device.type == 'cpu' else nullcontext()


def count_flops(pipe: Any, path: str, level: int, seed: int, steps: int,
                guidance: float) -> float:
    """FLOPs of one official pipeline call on one image (torch's FlopCounterMode)."""
    from PIL import Image
    from torch.utils.flop_counter import FlopCounterMode
    img = Image.open(path).convert('RGB')
    with FlopCounterMode(display=False) as counter, torch.no_grad(), \
            counted_attention(pipe.device):
        pipe(image=img, noise_level=level, generator=torch.Generator('cpu').manual_seed(seed),
             num_inference_steps=steps, guidance_scale=guidance, output_type='pil')
    return float(counter.get_total_flops())


def cpu_matmul_tflops(n: int = 1024, repeats: int = 3,
                      dtype: torch.dtype = torch.float32) -> float:
    """Measured matmul throughput of this CPU in the arms' ``dtype`` (the "peak" for a CPU
    MFU: a bfloat16 run against the float32 rate was not its own peak)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    best = float('inf')
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e12


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory since the last reset: CUDA allocated, or on CPU the process's peak RSS
    (Linux's VmHWM, which :func:`reset_peak_memory` resets; elsewhere the lifetime peak)."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    try:
        with open('/proc/self/status') as f:
            return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) / 1024
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's statistics, or on Linux the process's VmHWM (each arm's own
    peak, not the run's so far)."""
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass
