"""The dtype reaches diffusers' ``from_pretrained`` under the name the installed diffusers
takes."""
import pytest
import torch


@pytest.mark.parametrize('old', [False, True])
def test_the_pipeline_dtype_is_passed_under_the_name_diffusers_takes(tiny_unclip_path,
                                                                     monkeypatch, old):
    """setup.py allows diffusers 0.30; ``dtype`` came with the release that deprecated
    ``torch_dtype`` (``deprecation_utils._resolve_dtype``). Before it, ``dtype=`` was ignored
    with a warning: the pipeline loaded in float32 whatever ``--dtype`` said (on a GPU the
    fp16 default ran at twice the memory)."""
    from diffusers import StableUnCLIPImg2ImgPipeline
    from diffusers.utils import deprecation_utils

    from genview_mm.generation.pipeline_loader import load_unclip_pipeline
    name = 'torch_dtype' if old else 'dtype'
    if old:  # an older diffusers: no _resolve_dtype, no dtype argument
        monkeypatch.delattr(deprecation_utils, '_resolve_dtype')
    given = []
    real = StableUnCLIPImg2ImgPipeline.from_pretrained.__func__

    def spy(cls, path, *args, **kwargs):
        given.append(sorted(k for k in kwargs if k in ('dtype', 'torch_dtype')))
        kwargs['dtype'] = kwargs.pop(name)  # the installed diffusers' own name
        return real(cls, path, *args, **kwargs)
    monkeypatch.setattr(StableUnCLIPImg2ImgPipeline, 'from_pretrained', classmethod(spy))
    pipe = load_unclip_pipeline(tiny_unclip_path, torch.device('cpu'), 'fp16')
    assert given == [[name]] and pipe.unet.dtype == torch.float16
