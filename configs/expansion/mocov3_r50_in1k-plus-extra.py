# The paper's data-expansion baseline for MoCo v3, ResNet-50 (the 100-epoch row): upstream
# MMPretrain's MoCo v3 (method, pipeline, AMP, LARS, batch 8 GPUs x 512) on ImageNet-1K train
# plus as many extra real images as GenView has views (1,281,167), instead of GenView's pairs.
# An epoch is twice as long as GenView's (2N images, not N), so the epochs are halved (50, not
# 100) with the warm-up (5) and the cosine (45): 31,300 iterations of 4096 images, as GenView's
# (docs/reproducing_the_paper.md, "Data-expansion baselines").
#   bash tools/dist_train.sh configs/expansion/mocov3_r50_in1k-plus-extra.py 8
_base_ = ['mmpretrain::mocov3/mocov3_resnet50_8xb512-amp-coslr-100e_in1k.py',
          '../_base_/expansion.py']

train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='ConcatDataset',
    # ImageNet has class names, the unlabelled extra set has none: not a mismatch
    ignore_keys=['classes'],
    datasets=[
        _base_.train_dataloader.dataset,  # upstream's ImageNet-1K train, unchanged
        dict(_base_.extra_images, pipeline=_base_.train_dataloader.dataset.pipeline),
    ]))
train_cfg = dict(max_epochs=50)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=45, by_epoch=True, begin=5, end=50,
         convert_to_iter_based=True)]
