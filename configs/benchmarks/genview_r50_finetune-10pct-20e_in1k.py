# Semi-supervised ImageNet-1k: fine-tune a GenView ResNet-50 (all layers) on 10% of the labels.
#   python tools/make_semi_subsets.py --train-list data/imagenet/meta/train.txt --percent 10 \
#       --out-dir data/imagenet/meta          # -> data/imagenet/meta/train_10percent.txt
#   bash tools/dist_train.sh configs/benchmarks/genview_r50_finetune-10pct-20e_in1k.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/genview_mocov2_r50_backbone.pth
# The 1% config's recipe except the subset list and the weight decay (MMSelfSup's 10% benchmark:
# backbone lr 0.01, head lr x100, weight decay 1e-4 where its 1% one has 5e-4, 20 epochs).
_base_ = './genview_r50_finetune-1pct-20e_in1k.py'

train_dataloader = dict(dataset=dict(ann_file='meta/train_10percent.txt'))
optim_wrapper = dict(optimizer=dict(weight_decay=1e-4))
