# ImageNet-1k linear probe of a GenView SimSiam ResNet-50 backbone.
# Upstream MMPretrain's benchmark for this method (8 GPUs x 512, LARS, cosine, 90 epochs):
#   mmpretrain::simsiam/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py
# initialised from the converted backbone (tools/convert_checkpoint.py); the raw pretraining
# checkpoint works too, with the same prefix='backbone.'.
#   bash tools/dist_train.sh \
#       configs/benchmarks/genview_simsiam_r50_linear-lars-coslr-90e_in1k.py 8 \
#       --cfg-options \
#       model.backbone.init_cfg.checkpoint=checkpoints/genview_simsiam_r50_backbone.pth
_base_ = ['mmpretrain::simsiam/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py',
          '../_base_/clip_normalization.py']

custom_imports = dict(imports=['genview_mm'], allow_failed_imports=False)

# The probe sees inputs normalised as in GenView pretraining (and as the official probes):
# CLIP's mean/std, RGB.
data_preprocessor = dict(mean=_base_.clip_mean, std=_base_.clip_std)

# Default backbone weights (tools/convert_checkpoint.py output). Override the init_cfg key,
# e.g. --cfg-options model.backbone.init_cfg.checkpoint=PATH;
# re-assigning `pretrained` in a child config does not reach the dicts below.
pretrained = 'checkpoints/genview_simsiam_r50_backbone.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
