"""Model pieces of ``bench_scorer.py --mode scorer``: the pair scorer alone, official path (O)
against the project's optimised scorer (P), with their errors against a float32 reference.

O: two eager encoder calls (one per view) under autocast, float32 weights, NCHW
(:func:`genview_mm.models.scorers.official_scores`). P: :class:`PairQualityScorer` with its speed
switches. Reference: O's path in float32 with TF32 off. All three score the same SSL-normalised
views (uint8 -> CLIP-normalised floats, as the configs' data preprocessor hands them over).
"""
import copy
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch
from scorer_step import CLOCKS, random_pca

#: the SSL normalisation of the GenView configs (CLIP's, 0-255 units)
CLIP_MEAN_255 = [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
CLIP_STD_255 = [0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]
#: ``--preset``: timm model, input side and pair counts
PRESETS = {'gpu': dict(model='convnext_base.clip_laion2b_augreg', size=224, pairs=[32, 512]),
           'cpu': dict(model='convnext_atto', size=224, pairs=[2, 8])}


def build_encoder(model: str, size: int, device: str) -> torch.nn.Module:
    """A TimmPatchEncoder of ``model`` with random weights (no hub), on ``device``."""
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(dict(type='TimmPatchEncoder', model_name=model, pretrained=False,
                             input_size=size)).to(device)


def flops_per_image(encoder: torch.nn.Module, device: str) -> float:
    """FLOPs (2 per multiply-add) of one image through ``encoder`` (torch's counter)."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(1, 3, encoder.input_size, encoder.input_size, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        encoder(x)
    return float(counter.get_total_flops())


def fake_views(pairs: int, size: int, device: str, seed: int = 0) -> List[torch.Tensor]:
    """Two batches of uint8 views, CLIP-normalised to float32 as the data preprocessor does."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor(CLIP_MEAN_255).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD_255).view(1, 3, 1, 1)
    return [((torch.randint(0, 256, (pairs, 3, size, size), generator=g, dtype=torch.uint8)
              .float() - mean) / std).to(device) for _ in range(2)]


def build_arms(encoder: torch.nn.Module, folder: str, amp_dtype: torch.dtype,
               options: dict) -> Dict[str, Callable]:
    """``ref``, ``O`` and ``P``, each ``(view1, view2) -> q`` on views normalised as above
    (``P`` gets its own copy of ``encoder``, which it casts in place), and ``scorer``: P's."""
    from genview_mm.models.scorers import PairQualityScorer, official_scores
    from genview_mm.models.scorers.official import no_tf32
    pca = random_pca(encoder, f'{folder}/pca.pth')
    scorer = PairQualityScorer(pca, encoder=copy.deepcopy(encoder), mean=CLIP_MEAN_255,
                               std=CLIP_STD_255, autocast_dtype=amp_dtype, **options)
    direction = scorer.__dict__['_direction']
    norm = dict(src_mean=CLIP_MEAN_255, src_std=CLIP_STD_255)

    def ref(v1, v2):
        with no_tf32():
            return official_scores(encoder, direction, v1, v2, dtype=None, **norm)['q']

    return dict(ref=ref,
                O=lambda v1, v2: official_scores(encoder, direction, v1, v2, amp_dtype,
                                                 **norm)['q'],
                P=lambda v1, v2: scorer(v1, v2).q, scorer=scorer)


def timed(fn: Callable[[], object], calls: int, device: str, clock: str) -> float:
    """Seconds for ``calls`` calls of ``fn`` (CUDA events on a GPU, ``clock`` elsewhere)."""
    if device.startswith('cuda'):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = CLOCKS[clock]()
    for _ in range(calls):
        fn()
    return CLOCKS[clock]() - t0


def wall_seconds(fn: Callable[[], object], calls: int, device: str) -> float:
    """Elapsed seconds of ``calls`` calls, host work included (compiling happens on the host and
    in compile workers, which neither CUDA events nor process time see)."""
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return time.perf_counter() - t0


def measure(arms: Dict[str, Callable], views: List[torch.Tensor], device: str, clock: str,
            warmup: int, blocks: int, reps: int) -> dict:
    """First call (compile, graph capture) and warm-up in wall seconds, then alternating timed
    blocks of O and P on ``clock`` (CUDA events on a GPU).

    Returns:
        dict: ``first`` and ``warmup`` seconds per arm, ``block`` (median seconds of ``reps``
        calls) per arm, and ``q`` of every arm (``ref`` included) on ``views``.
    """
    out = dict(first={}, warmup={}, block={}, q={})
    for name in ('O', 'P'):
        def call(name=name):
            return arms[name](*views)
        out['first'][name] = wall_seconds(call, 1, device)
        out['warmup'][name] = wall_seconds(call, warmup, device)
    samples: Dict[str, List[float]] = {'O': [], 'P': []}
    for _ in range(blocks):
        for name in ('O', 'P'):
            samples[name].append(timed(lambda name=name: arms[name](*views), reps, device,
                                       clock))
    out['block'] = {k: statistics.median(v) for k, v in samples.items()}
    out['q'] = {k: arms[k](*views).float().cpu() for k in ('ref', 'O', 'P')}
    return out


def report(pairs: int, result: dict, reps: int, flops_img: float,
           peak_tflops: Optional[float]) -> List[str]:
    """The printed lines of one batch size: time to first score, throughput, MFU, errors."""
    from genview_mm.models.scorers import score_errors, within_accuracy_rule
    lines = [f'pairs={pairs} first call (compile, capture; wall) O={result["first"]["O"]:.3f} s'
             f' P={result["first"]["P"]:.3f} s; then warm-up O={result["warmup"]["O"]:.3f} s'
             f' P={result["warmup"]["P"]:.3f} s']
    rate = {k: pairs * reps / t for k, t in result['block'].items()}
    for name in ('O', 'P'):
        mfu = (f'{100 * 2 * flops_img * rate[name] / (peak_tflops * 1e12):.1f}%'
               if peak_tflops else 'n/a (give --peak-tflops)')
        lines.append(f'pairs={pairs} arm={name} pairs/s={rate[name]:.2f} MFU={mfu}')
    lines.append(f'pairs={pairs} ratio P/O={rate["P"] / rate["O"]:.3f}')
    errors = {k: score_errors(result['q'][k], result['q']['ref']) for k in ('O', 'P')}
    for name in ('O', 'P'):
        lines.append(f'pairs={pairs} arm={name} err_q={errors[name]["q"]:.3e} '
                     f'err_w={errors[name]["w"]:.3e}')
    ok = within_accuracy_rule(errors['P'], errors['O'])
    ratio = {k: f'{p / o:.3f}' if o else 'inf' if p else 'n/a (both 0)'  # one pair: w = 1
             for k, p, o in ((k, errors['P'][k], errors['O'][k]) for k in ('q', 'w'))}
    lines.append(f'pairs={pairs} P within the accuracy rule (errors <= O\'s): '
                 f'{"yes" if ok else "no"} (P/O error ratio q={ratio["q"]} w={ratio["w"]})')
    return lines
