# Upstream MMPretrain MoCo v2, ResNet-50, ImageNet-1K, 200 epochs, 8 GPUs x 32, unchanged: the
# baseline row of docs/reproducing_the_paper.md "Data-expansion baselines" (mmpretrain: 67.5
# linear top-1), run through this project's tools (preflight, CPU/GPU launch rules).
#   bash tools/dist_train.sh configs/baselines/mocov2_r50_in1k.py 8
_base_ = 'mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py'
