# Semi-supervised ImageNet-1k: fine-tune a GenView ResNet-50 (all layers) on 10% of the labels.
# Subset list: the paper's numbers use SimCLR's 10percent.txt (128,116 images):
#   python tools/make_semi_subsets.py --train-list data/imagenet/meta/train.txt \
#       --simclr 10percent.txt --out-dir data/imagenet/meta  # -> meta/train_10percent.txt
# (--percent 10 instead of --simclr draws 128 a class: an approximation)
#   bash tools/dist_train.sh configs/benchmarks/genview_r50_finetune-10pct-20e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/genview_mocov2_r50_backbone.pth
# The 1% config's recipe except the subset list and the weight decay (MMSelfSup's 10% benchmark:
# backbone lr 0.01, head lr x100, weight decay 1e-4 where its 1% one has 5e-4, 20 epochs).
_base_ = './genview_r50_finetune-1pct-20e_in1k.py'

train_dataloader = dict(dataset=dict(ann_file='meta/train_10percent.txt'))
optim_wrapper = dict(optimizer=dict(weight_decay=1e-4))
