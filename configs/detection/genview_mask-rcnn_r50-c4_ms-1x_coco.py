# COCO Mask R-CNN R50-C4, 1x schedule, initialised from a GenView ResNet-50 (MoCo's C4 protocol:
# pytorch-style blocks, SyncBN everywhere incl. an extra norm after res5 in the RoI head, no
# frozen stages, multi-scale training). mmdet's C4 config is caffe-style (BGR, caffe mean, std 1):
# style and normalisation are switched to GenView pretraining's (RGB, CLIP mean/std).
# res2-res4 live in the backbone and res5 in the RoI head: both load the converted checkpoint.
#   bash tools/dist_train.sh configs/detection/genview_mask-rcnn_r50-c4_ms-1x_coco.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=$CKPT \
#       model.roi_head.shared_head.init_cfg.checkpoint=$CKPT
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50-caffe-c4_1x_coco.py', '../_base_/clip_normalization.py']

# mmpretrain.models registers ResLayerExtraNorm (res5 + norm) into mmdet's MODELS.
custom_imports = dict(imports=['genview_mm', 'mmpretrain.models'], allow_failed_imports=False)

# Default backbone weights (tools/convert_checkpoint.py output). Override both init_cfg keys:
# --cfg-options model.backbone.init_cfg.checkpoint=PATH
#     model.roi_head.shared_head.init_cfg.checkpoint=PATH
# (re-assigning `pretrained` in a child config does not reach the dicts below).
pretrained = 'checkpoints/genview_mocov2_r50_backbone.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    data_preprocessor=dict(mean=_base_.clip_mean, std=_base_.clip_std, bgr_to_rgb=True),
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    roi_head=dict(
        shared_head=dict(
            type='ResLayerExtraNorm',
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))))

# upstream's pipeline with its single-scale Resize replaced by multi-scale training
multi_scale = dict(type='RandomChoiceResize', keep_ratio=True,
                   scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768),
                           (1333, 800)])
train_pipeline = [*_base_.train_pipeline[:2], multi_scale, *_base_.train_pipeline[3:]]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
