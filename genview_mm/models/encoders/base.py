"""What every frozen patch encoder shares: freezing, preprocessing and its identity.

A patch encoder maps encoder-normalised (B, 3, S, S) pixels to (B, N, D) patch tokens. GenView
uses one twice (arXiv:2403.12003, Sec. 3.2 and 3.3): the generator's CLIP image encoder estimates
each image's foreground ratio, and the pair scorer's CLIP encoder gives the tokens whose
foreground/background similarities weight the loss. Both read a :class:`ForegroundPCA` fitted for
*that* encoder, so an encoder can say what it is (:class:`EncoderIdentity`): a canonical name, an
architecture signature and a fingerprint of its weights that survives moving the files, another
path to the same weights and another dtype.
"""
from functools import partial
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from genview_mm.foreground.encoder_identity import EncoderIdentity, weights_fingerprint

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


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
