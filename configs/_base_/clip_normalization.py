# CLIP's pixel mean/std in 0-255 units, RGB. GenView's official configs normalise with these in
# pretraining and in every evaluation (the scorer then sees the tensors it was trained on); our
# pretraining, linear-probe, semi-supervised and detection configs do the same, so the released
# checkpoints are evaluated as they were trained.
clip_mean = [255 * 0.48145466, 255 * 0.4578275, 255 * 0.40821073]
clip_std = [255 * 0.26862954, 255 * 0.26130258, 255 * 0.27577711]
