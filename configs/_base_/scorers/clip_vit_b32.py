# A cheaper pair scorer: CLIP ViT-B/32 (same 7x7 grid at 224 px, 768-d tokens, about a third of
# the ConvNeXt-Base-W's FLOPs; docs/benchmarks.md, "The pair scorer", gives the measured step
# cost of both). Not the paper's. Switch a GenView config to it in a child config:
#   model = dict(scorer=dict(_delete_=True, **_base_.clip_vit_b32_scorer))
# Speed switches: PairQualityScorer's defaults, the same as convnext_scorer's (on CUDA only).
clip_vit_b32_scorer = dict(
    type='PairQualityScorer',
    encoder='openai/clip-vit-base-patch32',
    pca_path='data/genview/pca/clip-vit-b32.pth')
