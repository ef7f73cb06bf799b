# COCO Mask R-CNN R50-FPN, 2x schedule (24 epochs, lr x0.1 at epochs 16 and 22: mmdet's
# schedule_2x), otherwise identical to the 1x config (GenView backbone, SyncBN, multi-scale).
#   bash tools/dist_train.sh configs/detection/genview_mask-rcnn_r50-fpn_ms-2x_coco.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/genview_mocov2_r50_backbone.pth
_base_ = './genview_mask-rcnn_r50-fpn_ms-1x_coco.py'

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
