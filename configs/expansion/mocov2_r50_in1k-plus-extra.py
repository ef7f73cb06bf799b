# The paper's data-expansion baseline for MoCo v2, ResNet-50: upstream MMPretrain's MoCo v2
# (method, pipeline, batch 8 GPUs x 32) on ImageNet-1K train plus as many extra real images as
# GenView has views (one per ImageNet train image: 1,281,167), instead of GenView's pairs.
# An epoch is twice as long as GenView's (2N images, not N), so the epochs are halved (100, not
# 200) and the cosine schedule with them: 1,000,900 iterations of 256 images, GenView's 1,000,800
# (2N images make 10,009 whole batches, one more than twice N's 5,004; see
# docs/reproducing_the_paper.md, "Data-expansion baselines").
#   bash tools/dist_train.sh configs/expansion/mocov2_r50_in1k-plus-extra.py 8
_base_ = ['mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
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
train_cfg = dict(max_epochs=100)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=100, by_epoch=True, begin=0, end=100)]
