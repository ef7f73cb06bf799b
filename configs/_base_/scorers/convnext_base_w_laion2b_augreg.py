# The paper's pair scorer (default of every GenView pretraining config): the image tower of
# OpenCLIP ConvNeXt-Base-W laion2B-s13B-b82K-augreg (timm: convnext_base.clip_laion2b_augreg),
# frozen, in eval mode, 7x7x1024 tokens from forward_features at 224 px, with its foreground
# PCA. Import the authors' vector (tools/import_official_pca.py) or fit one
# (tools/fit_foreground_pca.py --timm-model convnext_base.clip_laion2b_augreg --input-size 224).
# Speed (PairQualityScorer docstring; README "Cost of the scorer"): fp16 autocast with the
# Conv/Linear weights stored in fp16 (bit-identical), channels_last, torch.compile at the step's
# batch and CUDA graphs up to 64 pairs, all on CUDA only ('auto'); off on CPU. Turn one off with
# e.g. --cfg-options model.scorer.compile=False
convnext_scorer = dict(
    type='PairQualityScorer',
    encoder=dict(type='TimmPatchEncoder', model_name='convnext_base.clip_laion2b_augreg',
                 input_size=224),
    pca_path='data/genview/pca/convnext-base-w-laion2b-augreg.pth',
    autocast_dtype='float16', cast_weights=True, channels_last='auto', compile='auto',
    cuda_graph='auto')
