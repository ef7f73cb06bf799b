"""Fit the foreground PCA (direction, mean, alpha) of a CLIP vision encoder's patch tokens.

Example (the generator's encoder, 10,000 ImageNet train images)::

    python tools/fit_foreground_pca.py data/imagenet/train --out work_dirs/fg_pca_vith14.pth

Writes the PCA file and a contact sheet (``--sheet``, default: the output path with ``.png``)
showing each sampled image next to its foreground mask. See
``genview_mm/foreground/fit.py`` for the sign rule and the threshold.
"""
import argparse
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

DEFAULT_ENCODER = 'stabilityai/stable-diffusion-2-1-unclip'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('source', help='image folder, image list / MMPretrain annotation file, or '
                   'MMPretrain config (.py)')
    p.add_argument('--out', required=True, help='output PCA file (.pth)')
    p.add_argument('--data-root', default=None, help='root for relative paths in a list file, '
                   'or data_root override for a config')
    p.add_argument('--dataset-key', default='train_dataloader.dataset',
                   help='where the dataset sits in a config (default: %(default)s)')
    p.add_argument('--num-images', type=int, default=10000,
                   help='images sampled for the fit; <=0: all (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='sampling seed (default: %(default)s)')
    p.add_argument('--per-folder', action='store_true',
                   help='spread the sample evenly over image folders (e.g. 10 per ImageNet '
                   'class for 10000 images, like the official fit)')
    p.add_argument('--encoder', default=DEFAULT_ENCODER,
                   help='CLIP vision encoder: local folder or hub id (default: %(default)s)')
    p.add_argument('--subfolder', default=None,
                   help="subfolder of --encoder holding it (default: 'image_encoder' for the "
                   'default hub id or a local diffusers pipeline folder, none otherwise)')
    p.add_argument('--timm-model', default=None,
                   help='fit for a timm model instead of a transformers CLIP (the official '
                   'scorer: convnext_base.clip_laion2b); its last feature map gives the tokens')
    p.add_argument('--timm-checkpoint', default=None,
                   help='local weights file for --timm-model (default: timm\'s pretrained)')
    p.add_argument('--input-size', type=int, default=None,
                   help='input side for --timm-model (default: the model\'s own)')
    p.add_argument('--fg-fraction', type=float, default=0.4,
                   help='target foreground fraction of tokens (default: %(default)s)')
    p.add_argument('--sign', choices=['center', '+1', '-1'], default='center',
                   help="direction sign: 'center' = centre tokens score higher than border "
                   "tokens; '+1'/'-1' = manual override (default: %(default)s)")
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--num-workers', type=int, default=4, help='image decoding workers')
    p.add_argument('--device', default=None, help="default: 'cuda' if available else 'cpu'")
    p.add_argument('--fp16', action='store_true', help='encode in float16 (GPU only)')
    p.add_argument('--sheet', default=None, help='contact sheet PNG path')
    p.add_argument('--sheet-images', type=int, default=32)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    import torch

    import genview_mm  # noqa: F401
    from genview_mm.foreground import CLIPPatchEncoder
    from genview_mm.foreground.fit_runner import run_fit, sample_paths
    from genview_mm.generation.sources import list_images

    subfolder = args.subfolder
    pipeline_folder = (osp.isfile(osp.join(args.encoder, 'image_encoder', 'config.json'))
                       and not osp.isfile(osp.join(args.encoder, 'config.json')))
    if subfolder is None and (args.encoder == DEFAULT_ENCODER or pipeline_folder):
        subfolder = 'image_encoder'  # a diffusers unCLIP pipeline: use its image encoder
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    dtype = torch.float16 if args.fp16 else None
    items = list_images(args.source, args.data_root, args.dataset_key)
    paths = sample_paths([it.path for it in items], args.num_images, args.seed,
                         args.per_folder)
    logging.info('fitting on %d of %d images', len(paths), len(items))
    if args.timm_model:
        from genview_mm.models.scorers import build_patch_encoder
        encoder = build_patch_encoder(dict(
            type='TimmPatchEncoder', model_name=args.timm_model, input_size=args.input_size,
            pretrained=args.timm_checkpoint is None, checkpoint_path=args.timm_checkpoint))
        encoder = encoder.to(device, dtype or torch.float32)
    else:
        encoder = CLIPPatchEncoder.from_pretrained(args.encoder, subfolder=subfolder,
                                                   torch_dtype=dtype).to(device)
    pca = run_fit(paths, encoder, args.out, fg_fraction=args.fg_fraction, sign_rule=args.sign,
                  batch_size=args.batch_size, num_workers=args.num_workers, sheet=args.sheet,
                  sheet_images=args.sheet_images)
    print(f'saved {args.out}: encoder={pca.encoder} grid={pca.grid} alpha={pca.alpha:.4f} '
          f'images={pca.num_images}')
    return 0


if __name__ == '__main__':
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    sys.exit(main())
