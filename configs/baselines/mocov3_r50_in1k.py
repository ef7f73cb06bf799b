# Upstream MMPretrain MoCo v3, ResNet-50, ImageNet-1K, 100 epochs, 8 GPUs x 512, AMP, unchanged:
# the baseline row of docs/reproducing_the_paper.md "Data-expansion baselines" (68.9 linear
# top-1 in the GenView paper's table; MMPretrain's model zoo gives 69.6 for this config), run
# through this project's tools (preflight, CPU/GPU launch rules).
#   bash tools/dist_train.sh configs/baselines/mocov3_r50_in1k.py 8
_base_ = 'mmpretrain::mocov3/mocov3_resnet50_8xb512-amp-coslr-100e_in1k.py'
