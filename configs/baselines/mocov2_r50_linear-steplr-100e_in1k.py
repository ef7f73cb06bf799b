# ImageNet-1k linear probe of an upstream or data-expansion MoCo v2 ResNet-50 backbone
# (configs/baselines/mocov2_r50_in1k.py, configs/expansion/mocov2_r50_in1k-plus-extra.py):
# upstream MMPretrain's benchmark unchanged, ImageNet's mean/std as in their pretraining (a
# GenView backbone is probed with configs/benchmarks/genview_mocov2_r50_linear-steplr-100e_in1k.py,
# CLIP's). Give the converted backbone (tools/convert_checkpoint.py):
#   bash tools/dist_train.sh configs/baselines/mocov2_r50_linear-steplr-100e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/mocov2_r50_backbone.pth
_base_ = 'mmpretrain::mocov2/benchmarks/resnet50_8xb32-linear-steplr-100e_in1k.py'

model = dict(backbone=dict(init_cfg=dict(checkpoint='checkpoints/mocov2_r50_backbone.pth')))
