# COCO Mask R-CNN R50-FPN, 1x schedule (12 epochs, 8 GPUs x 2 images), initialised from a
# GenView ResNet-50 and fine-tuned end to end with SyncBN (MoCo's detection-transfer protocol:
# no frozen stages, BN statistics trained and synchronised, BN in FPN and the 4conv1fc box head;
# multi-scale training, shorter side 640-800).
#   python tools/convert_checkpoint.py work_dirs/genview_mocov2_r50_in1k/epoch_200.pth \
#       checkpoints/genview_mocov2_r50_backbone.pth
#   bash tools/dist_train.sh configs/detection/genview_mask-rcnn_r50-fpn_ms-1x_coco.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/genview_mocov2_r50_backbone.pth
# Without CUDA, tools/train.py turns SyncBN into BN.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/clip_normalization.py']

custom_imports = dict(imports=['genview_mm'], allow_failed_imports=False)

# Default backbone weights (tools/convert_checkpoint.py output). Override the init_cfg key,
# e.g. --cfg-options model.backbone.init_cfg.checkpoint=PATH;
# re-assigning `pretrained` in a child config does not reach the dicts below.
pretrained = 'checkpoints/genview_mocov2_r50_backbone.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    # Normalisation of GenView pretraining: CLIP's mean/std, RGB.
    data_preprocessor=dict(mean=_base_.clip_mean, std=_base_.clip_std, bgr_to_rgb=True),
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

# upstream's pipeline with its single-scale Resize replaced by multi-scale training
multi_scale = dict(type='RandomChoiceResize', keep_ratio=True,
                   scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768),
                           (1333, 800)])
train_pipeline = [*_base_.train_pipeline[:2], multi_scale, *_base_.train_pipeline[3:]]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
