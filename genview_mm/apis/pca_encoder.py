"""Build the patch encoder that the PCA tools' arguments name (tools/_pca_args.py)."""
import argparse
import os.path as osp

from genview_mm.models.encoders import CLIPPatchEncoder, build_patch_encoder
from genview_mm.utils.dist import resolve_device

#: the generator's encoder: the image encoder of Stable unCLIP 2.1 (OpenCLIP ViT-H/14)
DEFAULT_ENCODER = 'stabilityai/stable-diffusion-2-1-unclip'


def build_encoder_from_args(args: argparse.Namespace):
    """The frozen patch encoder the arguments name, on the requested device."""
    import torch

    device = resolve_device(args.device)
    # float32 unless --fp16: transformers 5 loads a model in the dtype it was saved in, so a
    # pipeline saved in fp16 was fitted in half precision without --fp16
    dtype = torch.float16 if args.fp16 else torch.float32
    if args.timm_model:
        encoder = build_patch_encoder(dict(
            type='TimmPatchEncoder', model_name=args.timm_model, input_size=args.input_size,
            pretrained=args.timm_checkpoint is None, checkpoint_path=args.timm_checkpoint))
        return encoder.to(device, dtype)
    subfolder, folder = args.subfolder, osp.expanduser(args.encoder)  # '~/pipe' too
    pipeline_folder = (osp.isfile(osp.join(folder, 'image_encoder', 'config.json'))
                       and not osp.isfile(osp.join(folder, 'config.json')))
    if subfolder is None and (args.encoder == DEFAULT_ENCODER or pipeline_folder):
        subfolder = 'image_encoder'  # a diffusers unCLIP pipeline: use its image encoder
    return CLIPPatchEncoder.from_pretrained(args.encoder, subfolder=subfolder,
                                            torch_dtype=dtype).to(device)
