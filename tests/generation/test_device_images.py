"""Device-side image steps of the fast path against PIL and the CLIP image processor: bicubic
resize within MAX_RESIZE_DIFF of PIL's, CLIP pixels close to the processor's."""
import numpy as np
import pytest
import torch
from PIL import Image

from genview_mm.generation.device_images import MAX_RESIZE_DIFF, clip_pixels, to_uint8


def smooth_images(n=3, size=40, seed=0):
    """Photo-like float images in [0, 1] (random low frequencies plus fine noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 5, 5, generator=g)
    x = torch.nn.functional.interpolate(low, size=(size, size), mode='bilinear',
                                        align_corners=False)
    return (x + 0.15 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)


@pytest.mark.parametrize('size', [40, 24, 17, 64])
@pytest.mark.parametrize('noise', [False, True])
def test_to_uint8_matches_pil_bicubic(size, noise):
    """Photo-like and pure-noise images (whose bicubic overshoot PIL clips between its two
    passes) resized as PIL resizes them, to MAX_RESIZE_DIFF."""
    x = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(1)) if noise \
        else smooth_images()
    ours = to_uint8(x, size).permute(0, 2, 3, 1).numpy().astype(np.int16)
    quant = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)  # diffusers' way
    for i, arr in enumerate(quant):
        ref = np.asarray(Image.fromarray(arr).resize((size, size), Image.BICUBIC), np.int16)
        diff = np.abs(ours[i] - ref)
        assert diff.max() <= (0 if size == 40 else MAX_RESIZE_DIFF)
        assert diff.mean() < 0.05


@pytest.mark.parametrize('hw,size', [((48, 32), 20), ((32, 48), 20), ((64, 16), 32),
                                     ((16, 64), 32), ((82, 14), 12), ((40, 40), 24)])
def test_non_square_resize_runs_its_passes_in_pils_order(hw, size):
    """A non-square image (a generation with height != width) resized square: Pillow >= 13
    runs the height pass first when the height loses more than twice the pixels the width
    loses; the other order clips the overshoot of noise differently (3 to 21 levels off on
    these shapes, where to_uint8 always went width first)."""
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(3))
    ours = to_uint8(x, size).permute(0, 2, 3, 1).numpy().astype(np.int16)
    quant = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    for i, arr in enumerate(quant):
        ref = np.asarray(Image.fromarray(arr).resize((size, size), Image.BICUBIC), np.int16)
        diff = np.abs(ours[i] - ref)
        assert diff.max() <= MAX_RESIZE_DIFF and diff.mean() < 0.05, (diff.max(), diff.mean())


def test_to_uint8_768_to_512_within_one_level():
    x = torch.rand(1, 3, 768, 768, generator=torch.Generator().manual_seed(2))
    ours = to_uint8(x, 512)[0].permute(1, 2, 0).numpy().astype(np.int16)
    quant = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    ref = np.asarray(Image.fromarray(quant).resize((512, 512), Image.BICUBIC), np.int16)
    assert np.abs(ours - ref).max() <= 1 and np.abs(ours - ref).mean() < 0.01


def test_clip_pixels_equal_the_processor_on_pil():
    """The processor's torchvision backend on the tensors gives the PIL input's pixels."""
    from transformers import CLIPImageProcessor
    proc = CLIPImageProcessor(size={'shortest_edge': 32}, crop_size={'height': 28,
                                                                     'width': 28})
    for x in (to_uint8(smooth_images(size=48)), to_uint8(smooth_images(size=48))[..., :36]):
        ref = proc(images=[Image.fromarray(a) for a in x.permute(0, 2, 3, 1).numpy()],
                   return_tensors='pt').pixel_values
        ours = clip_pixels(x, proc)
        assert ours.shape == ref.shape == (3, 3, 28, 28) and torch.equal(ours, ref)
