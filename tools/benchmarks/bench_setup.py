"""Everything ``bench_generator.py`` sets up before timing: one random-weight pipeline copied
into the arms' dtype (O and P) and the other of fp16/fp32 (the PSNR reference), the source
JPEGs, a foreground PCA for the pipeline's encoder, the generator of arm P (warmed up and, with
``--compile``, compiled), each image's noise level and seed, and the FLOPs of one call."""
import copy
import os.path as osp
import time
from types import SimpleNamespace
from typing import Any, Tuple

import torch
from generator_arms import (
    count_flops,
    instrument_project,
    official_arm,
    project_arm,
    project_outputs,
)

from genview_mm.datasets.image_sources import list_folder


def _base_pipeline(args, tmp: str, device: torch.device) -> Any:
    if args.preset == 'tiny':
        from diffusers import StableUnCLIPImg2ImgPipeline

        from genview_mm.demo.tiny_models import save_tiny_unclip
        return StableUnCLIPImg2ImgPipeline.from_pretrained(save_tiny_unclip(
            osp.join(tmp, 'unclip'))).to(device)
    from unclip_real_size import build_real_size
    return build_real_size(str(device))


def _finite(pipe: Any, embeds: torch.Tensor, steps: int) -> bool:
    with torch.no_grad():
        out = pipe(image_embeds=embeds, num_inference_steps=steps, output_type='pt',
                   generator=torch.Generator('cpu').manual_seed(0)).images
    return bool(torch.isfinite(out).all())


def _tame(pipes, steps: int) -> float:
    """Scale the random output projections until arm O's dtype gives finite images."""
    from unclip_real_size import scale_output_projections
    pipe = pipes[0]
    dim = pipe.image_normalizer.mean.shape[-1]
    embeds = torch.randn(1, dim, generator=torch.Generator().manual_seed(0))
    embeds = embeds.to(pipe.device, pipe.unet.dtype)
    scale = 1.0
    while not _finite(pipe, embeds, steps):
        if scale <= 1e-3:  # both arms would write black images, read as identical
            raise RuntimeError(f'{pipe.unet.dtype} outputs stay non-finite with the random '
                               f'output projections scaled by {scale:g}')
        for p in pipes:
            scale_output_projections(p, 0.5)
        scale *= 0.5
    return scale


def _pca(pipe: Any):
    """A foreground PCA for the pipeline's encoder (a random direction: any split works)."""
    from genview_mm.foreground import ForegroundPCA
    cfg = pipe.image_encoder.config
    direction = torch.randn(cfg.hidden_size, generator=torch.Generator().manual_seed(1))
    return ForegroundPCA(direction=direction / direction.norm(),
                         mean=torch.zeros(cfg.hidden_size), alpha=0.0, encoder='bench',
                         grid=(cfg.image_size // cfg.patch_size,) * 2,
                         input_size=cfg.image_size)


def prepare(args, tmp: str, device: torch.device) -> SimpleNamespace:
    from genview_mm.demo.photos import write_photos
    from genview_mm.generation import AdaptiveNoiseGenerator, image_seed
    from genview_mm.generation.pipeline_loader import resolve_dtype
    dtype = resolve_dtype(args.dtype, device)
    other = torch.float32 if dtype != torch.float32 else torch.float16
    base = _base_pipeline(args, tmp, device)
    pipe_o, pipe_p = copy.deepcopy(base).to(dtype=dtype), copy.deepcopy(base).to(dtype=dtype)
    pipe_ref = base.to(dtype=other)
    for p in (pipe_o, pipe_p, pipe_ref):
        p.set_progress_bar_config(disable=True)
    scale = _tame([pipe_o, pipe_p, pipe_ref], args.steps)
    pipe_ref.to('cpu')  # on the device only for its pass: the arms' peak memory is their own
    write_photos(osp.join(tmp, 'src'), args.images, args.source_size)
    items = list_folder(osp.join(tmp, 'src'))
    paths, keys = [it.path for it in items], [it.key for it in items]
    gen = AdaptiveNoiseGenerator(pca=_pca(pipe_p), pipeline=pipe_p, device=str(device),
                                 num_inference_steps=args.steps, guidance_scale=args.guidance,
                                 output_size=args.output_size, max_batch_size=args.batch_size,
                                 output=args.output, compile=args.compile,
                                 check_encoder=False, name='bench')
    output = gen.output  # auto: the generator's own choice (tensor on CUDA, PIL on a CPU)
    from PIL import Image
    info = gen.analyze([Image.open(p).convert('RGB') for p in paths])
    levels = dict(zip(keys, info['noise_level']))
    seeds = {k: image_seed(k, gen.base_seed, 0) for k in keys}
    official_arm(pipe_o, paths[:1], keys[:1], levels, seeds, osp.join(tmp, 'warm_O'),
                 args.steps, args.guidance, args.output_size)  # warm-up
    t0 = time.perf_counter()  # warm-up of P; compiles with --compile
    project_arm(gen, items[:args.batch_size], osp.join(tmp, 'warm_P'), args.batch_size)
    compile_s = time.perf_counter() - t0
    flops = count_flops(pipe_o, paths[0], levels[keys[0]], seeds[keys[0]], args.steps,
                        args.guidance)
    s = SimpleNamespace(pipe_o=pipe_o, gen=gen, items=items, paths=paths, keys=keys,
                        levels=levels, seeds=seeds, flops=flops, dtype=str(dtype).split('.')[-1],
                        output=output, compile_s=compile_s, weight_scale=scale,
                        pipe_p=pipe_p)

    def host_pass(arm: str, clock) -> Tuple[float, float]:
        """Main-thread host ms per image of ``arm`` on the first ``--host-images`` images: CPU
        time (the host work) and wall time (waits included)."""
        n = max(1, min(args.host_images, len(keys)))
        undo = []

        def patch(obj, name, value):
            undo.append((obj, name, obj.__dict__.get(name)))
            setattr(obj, name, value)
        pipe = pipe_o if arm == 'O' else gen.pipeline
        patch(pipe.image_processor, 'postprocess',
              clock.host_fn(pipe.image_processor.postprocess))
        patch(pipe.feature_extractor, 'preprocess',
              clock.host_fn(pipe.feature_extractor.preprocess))
        if arm == 'P':
            instrument_project(gen, clock, patch)
        out = osp.join(tmp, f'host_{arm}')
        try:
            t0, c0 = time.perf_counter(), time.thread_time()
            if arm == 'O':
                official_arm(pipe_o, paths[:n], keys[:n], levels, seeds, out, args.steps,
                             args.guidance, args.output_size, clock=clock)
            else:
                project_arm(gen, items[:n], out, args.batch_size)
            wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        finally:
            for obj, name, old in reversed(undo):
                if old is None:
                    delattr(obj, name)
                else:
                    setattr(obj, name, old)
        return 1e3 * clock.host_cpu_s(cpu) / n, 1e3 * clock.host_s(wall) / n

    def psnr_pairs(o_dir: str, p_dir: str, among):
        """(arm O's file, arm P's file) of the keys ``among`` that both arms wrote."""
        found = project_outputs(p_dir, among)
        return [(osp.join(o_dir, osp.splitext(k)[0] + '.jpg'), found[k]) for k in among
                if k in found]

    def psnr_reference() -> Tuple[float, int]:
        """The PSNR of arm O to arm O in the other of fp16/fp32 on the first ``--psnr-images``
        images (fp32 without TF32, whose 10-bit mantissa is fp16's) and how many that is."""
        from generator_arms import mean_psnr

        from genview_mm.models.scorers.official import no_tf32
        n = max(1, min(args.psnr_images, len(keys)))
        ref = osp.join(tmp, 'ref')
        pipe_ref.to(device)
        try:
            with no_tf32():
                official_arm(pipe_ref, paths[:n], keys[:n], levels, seeds, ref, args.steps,
                             args.guidance, args.output_size)
        finally:
            pipe_ref.to('cpu')
        names = [osp.splitext(k)[0] + '.jpg' for k in keys[:n]]
        return mean_psnr([(osp.join(tmp, 'O', m), osp.join(ref, m)) for m in names]), n

    s.host_pass, s.psnr_pairs, s.psnr_reference = host_pass, psnr_pairs, psnr_reference
    return s
