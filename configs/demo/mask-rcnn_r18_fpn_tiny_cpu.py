# A tiny Mask R-CNN (ResNet-18 layout with 8 base channels, 64-px images) that trains and evaluates
# in seconds on a CPU: the launchers' smoke test for MMDetection configs. Its backbone has the
# layout of configs/demo/genview_mocov2_r18_tiny_cpu.py and, like the GenView detection configs,
# starts from a converted backbone (tools/convert_checkpoint.py); init_cfg=None trains from
# scratch. Data: a COCO-format folder with annotations.json and images/ (tools/make_toy_coco.py):
#   python tools/make_toy_coco.py data/demo_coco
#   python tools/train.py configs/demo/mask-rcnn_r18_fpn_tiny_cpu.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/demo_r18_backbone.pth
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/clip_normalization.py']

data_root = 'data/demo_coco/'
metainfo = dict(classes=('rectangle', 'ellipse'))
image_size = (64, 64)

model = dict(
    # as the demo pretraining (and GenView's configs) normalise: CLIP's mean/std, RGB
    data_preprocessor=dict(mean=_base_.clip_mean, std=_base_.clip_std, bgr_to_rgb=True),
    backbone=dict(depth=18, base_channels=8, stem_channels=8,
                  init_cfg=dict(type='Pretrained', checkpoint='checkpoints/demo_r18_backbone.pth',
                                prefix='backbone.')),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16,
                  anchor_generator=dict(scales=[2], strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=dict(in_channels=16, fc_out_channels=32, num_classes=2),
        mask_roi_extractor=dict(out_channels=16),
        mask_head=dict(in_channels=16, conv_out_channels=16, num_classes=2)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=100),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations.json',
                 data_prefix=dict(img='images/'), filter_cfg=dict(filter_empty_gt=True, min_size=4),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations.json',
                 data_prefix=dict(img='images/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5)]
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
