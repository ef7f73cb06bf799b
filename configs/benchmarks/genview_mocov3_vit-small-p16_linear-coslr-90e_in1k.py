# ImageNet-1k linear probe of a GenView MoCo v3 ViT-S/16 backbone.
# Upstream MMPretrain's benchmark for this method (8 GPUs x 128, SGD lr 12, cosine, 90 epochs):
#   mmpretrain::mocov3/benchmarks/vit-small-p16_8xb128-linear-coslr-90e_in1k.py
# initialised from the converted backbone (tools/convert_checkpoint.py); the raw pretraining
# checkpoint works too, with the same prefix='backbone.'.
#   bash tools/dist_train.sh \
#       configs/benchmarks/genview_mocov3_vit-small-p16_linear-coslr-90e_in1k.py 8 \
#       --cfg-options \
#       model.backbone.init_cfg.checkpoint=checkpoints/genview_mocov3_vit-small-p16_backbone.pth
_base_ = ['mmpretrain::mocov3/benchmarks/vit-small-p16_8xb128-linear-coslr-90e_in1k.py',
          '../_base_/clip_normalization.py']

custom_imports = dict(imports=['genview_mm'], allow_failed_imports=False)

# The probe sees inputs normalised as in GenView pretraining (and as the official probes):
# CLIP's mean/std, RGB.
data_preprocessor = dict(mean=_base_.clip_mean, std=_base_.clip_std)

# Default backbone weights (tools/convert_checkpoint.py output). Override the init_cfg key,
# e.g. --cfg-options model.backbone.init_cfg.checkpoint=PATH;
# re-assigning `pretrained` in a child config does not reach the dicts below.
pretrained = 'checkpoints/genview_mocov3_vit-small-p16_backbone.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
