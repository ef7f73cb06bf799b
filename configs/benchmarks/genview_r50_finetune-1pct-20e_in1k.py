# Semi-supervised ImageNet-1k: fine-tune a GenView ResNet-50 (all layers) on 1% of the labels.
# Subset list: the paper's numbers use SimCLR's 1percent.txt (12,811 images, one name a line):
#   python tools/make_semi_subsets.py --train-list data/imagenet/meta/train.txt \
#       --simclr 1percent.txt --out-dir data/imagenet/meta   # -> meta/train_1percent.txt
# (--percent 1 instead of --simclr draws a class-balanced, seeded 13 a class: an approximation)
#   bash tools/dist_train.sh configs/benchmarks/genview_r50_finetune-1pct-20e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/genview_mocov2_r50_backbone.pth
# Recipe of MMSelfSup's semi-supervised benchmark (SGD, backbone lr 0.01, head lr x100,
# weight decay 5e-4, 20 epochs, lr x0.2 at epochs 12 and 16, SyncBN, 8 GPUs x 32 = 256 images
# a step: its 4 x 64).
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py', '../_base_/clip_normalization.py']

custom_imports = dict(imports=['genview_mm'], allow_failed_imports=False)

# Normalisation of GenView pretraining (and of the official configs): CLIP's mean/std, RGB.
data_preprocessor = dict(mean=_base_.clip_mean, std=_base_.clip_std)

# Default backbone weights (tools/convert_checkpoint.py output). Override the init_cfg key,
# e.g. --cfg-options model.backbone.init_cfg.checkpoint=PATH;
# re-assigning `pretrained` in a child config does not reach the dicts below.
pretrained = 'checkpoints/genview_mocov2_r50_backbone.pth'
model = dict(
    backbone=dict(
        norm_cfg=dict(type='SyncBN'),  # BN statistics of the whole step's 256 images
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(init_cfg=dict(type='Normal', layer='Linear', std=0.01)))

# MMSelfSup's benchmark crops and resizes with Pillow (upstream's ResNet recipe: OpenCV)
train_pipeline = [_base_.train_pipeline[0],
                  dict(_base_.train_pipeline[1], backend='pillow'),
                  _base_.train_pipeline[2], _base_.train_pipeline[3]]
test_pipeline = [_base_.test_pipeline[0], dict(_base_.test_pipeline[1], backend='pillow'),
                 _base_.test_pipeline[2], _base_.test_pipeline[3]]
train_dataloader = dict(dataset=dict(ann_file='meta/train_1percent.txt',
                                     pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=100)}))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[12, 16], gamma=0.2)
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=1)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2))
