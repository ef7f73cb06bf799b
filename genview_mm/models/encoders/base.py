"""What every frozen patch encoder shares: freezing, preprocessing and its identity.

A patch encoder maps encoder-normalised (B, 3, S, S) pixels to (B, N, D) patch tokens. GenView
uses one twice (arXiv:2403.12003, Sec. 3.2 and 3.3): the generator's CLIP image encoder estimates
each image's foreground ratio, and the pair scorer's CLIP encoder gives the tokens whose
foreground/background similarities weight the loss. Both read a :class:`ForegroundPCA` fitted for
*that* encoder, so an encoder can say what it is (:class:`EncoderIdentity`): a canonical name, an
architecture signature and a fingerprint of its weights that survives moving the files, another
path to the same weights and another dtype.
"""
import math
from functools import partial
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: tensors sampled by :func:`weights_fingerprint` and elements read from each
FINGERPRINT_TENSORS, FINGERPRINT_ELEMENTS = 16, 4096
#: relative tolerance of :func:`same_fingerprint` (bf16 rounding moves the statistics ~1e-4)
FINGERPRINT_RTOL = 2e-3


class EncoderIdentity(NamedTuple):
    """What a patch encoder is, as recorded in PCA files and compared when one is loaded.

    Attributes:
        name (str): canonical id: a hub id (also for a copy inside the Hugging Face cache), a
            timm model name, or an absolute folder.
        arch (str): architecture signature, e.g. ``'clip-vit:d1280-l32-p14-s224'``.
        fingerprint (List[float], optional): weight statistics (:func:`weights_fingerprint`);
            None when they could not be read.
    """
    name: str
    arch: Optional[str] = None
    fingerprint: Optional[List[float]] = None


def fingerprint_keys(shapes: Dict[str, Sequence[int]]) -> List[str]:
    """The tensors :func:`weights_fingerprint` reads: evenly spaced over the sorted names of
    the tensors with at least 16 elements."""
    names = sorted(k for k, s in shapes.items() if math.prod(s) >= 16)
    if not names:
        return []
    count = min(FINGERPRINT_TENSORS, len(names))
    step = (len(names) - 1) / max(count - 1, 1)
    return [names[round(i * step)] for i in range(count)]


def tensor_statistic(t: Tensor) -> float:
    """Mean absolute value of the first elements of ``t`` (flattened), in float64."""
    return float(t.detach().reshape(-1)[:FINGERPRINT_ELEMENTS].double().abs().mean())


def weights_fingerprint(state_dict: Dict[str, Tensor]) -> List[float]:
    """A dtype- and path-independent summary of a model's weights.

    For :data:`FINGERPRINT_TENSORS` tensors chosen by name (:func:`fingerprint_keys`) it takes
    the mean absolute value of their first :data:`FINGERPRINT_ELEMENTS` elements. The same
    weights give the same numbers whether loaded in fp32, fp16 or bf16 (within
    :data:`FINGERPRINT_RTOL`), from whichever folder; two trainings of one architecture do not.
    """
    floats = {k: v for k, v in state_dict.items() if v.is_floating_point()}
    keys = fingerprint_keys({k: tuple(v.shape) for k, v in floats.items()})
    return [tensor_statistic(floats[k]) for k in keys]


def same_fingerprint(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two fingerprints describe the same weights."""
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=FINGERPRINT_RTOL, abs_tol=1e-8) for x, y in zip(a, b))


def clip_preprocess(images: List, size: int, mean: Sequence[float],
                    std: Sequence[float]) -> Tensor:
    """PIL images -> float32 (B, 3, size, size), the way ``CLIPImageProcessor`` does it.

    The short side is resized to ``size`` (bicubic) and the long side to
    ``int(size * long / short)`` (truncated, as transformers does), then the centre is cropped,
    scaled to [0, 1] and normalised with ``mean``/``std``. Used when an encoder has no image
    processor of its own.
    """
    import numpy as np
    from PIL import Image
    arrays = []
    for img in images:
        img = img.convert('RGB')
        w, h = img.size
        short, long = min(w, h), max(w, h)
        new_long = int(size * long / short)
        nw, nh = (size, new_long) if w <= h else (new_long, size)
        img = img.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        arrays.append(np.asarray(img.crop((left, top, left + size, top + size))))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(tuple(mean)).view(1, 3, 1, 1)) / torch.tensor(
        tuple(std)).view(1, 3, 1, 1)


class PatchEncoderBase(BaseModule):
    """Base of the frozen patch encoders: never trained, always in eval mode.

    Subclasses set ``input_size`` (int), ``grid`` ((h, w)), ``dim`` (int), ``mean``/``std`` (RGB,
    0-1 units) and ``name`` (canonical id), implement ``forward`` ((B, 3, S, S) encoder-normalised
    pixels -> (B, h*w, D) tokens) and :meth:`weights` (the module whose state dict is
    fingerprinted), and call :meth:`freeze` at the end of ``__init__``.
    """

    input_size: int
    grid: Tuple[int, int]
    dim: int
    mean: Tuple[float, ...] = CLIP_MEAN
    std: Tuple[float, ...] = CLIP_STD
    name: str
    arch: Optional[str] = None
    processor = None  # a transformers image processor, when the encoder ships one

    def freeze(self) -> 'PatchEncoderBase':
        """No gradients, eval mode (:meth:`train` keeps it there)."""
        self.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> 'PatchEncoderBase':
        """Stay in eval mode whatever is asked: the encoder is frozen (dropout and drop-path
        off while scoring; the official scorer ran in train mode, which adds noise)."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def weights(self) -> torch.nn.Module:
        """The wrapped model whose weights identify this encoder."""
        return self

    def identity(self) -> EncoderIdentity:
        """Canonical name, architecture and weights fingerprint (computed once)."""
        cached = self.__dict__.get('_identity')
        if cached is None:
            cached = EncoderIdentity(self.name, self.arch,
                                     weights_fingerprint(self.weights().state_dict()))
            self.__dict__['_identity'] = cached
        return cached

    def pixel_transform(self) -> Callable[[List], Tensor]:
        """A picklable ``PIL images -> float32 (B, 3, S, S)`` function (for DataLoader workers):
        the encoder's own image processor when it has one, else :func:`clip_preprocess`."""
        if self.processor is not None:
            return partial(_processor_pixels, self.processor)
        return partial(clip_preprocess, size=self.input_size, mean=self.mean, std=self.std)

    def preprocess(self, images: List) -> Tensor:
        """PIL images -> normalised (B, 3, S, S) pixels on the encoder's device and dtype."""
        return self.pixel_transform()(images).to(self.device, self.dtype)


def _processor_pixels(processor, images: List) -> Tensor:
    return processor(images=images, return_tensors='pt')['pixel_values'].float()
