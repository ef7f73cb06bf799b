# The paper's pair scorer (default of every GenView pretraining config): the image tower of
# OpenCLIP ConvNeXt-Base-W laion2B-s13B-b82K-augreg (timm: convnext_base.clip_laion2b_augreg),
# frozen, in eval mode, 7x7x1024 tokens from forward_features at 224 px, with its foreground
# PCA. Import the authors' vector (tools/import_official_pca.py) or fit one
# (tools/fit_foreground_pca.py --timm-model convnext_base.clip_laion2b_augreg --input-size 224).
# Speed (PairQualityScorer docstring; docs/benchmarks.md "The pair scorer"): fp16 autocast
# with the Conv/Linear weights stored in fp16 (bit-identical), channels_last and CUDA graphs up
# to 64 pairs, on CUDA only ('auto'). torch.compile is opt-in (on an H200 its largest errors
# were 1.05x / 1.19x the official path's at 32 pairs, 0.85x at 512; it made a MoCo v3 step 1.27x
# upstream's against 1.46x without): --cfg-options model.scorer.compile=auto
convnext_scorer = dict(
    type='PairQualityScorer',
    encoder=dict(type='TimmPatchEncoder', model_name='convnext_base.clip_laion2b_augreg',
                 input_size=224),
    pca_path='data/genview/pca/convnext-base-w-laion2b-augreg.pth',
    autocast_dtype='float16', cast_weights=True, channels_last='auto', compile=False,
    cuda_graph='auto')
