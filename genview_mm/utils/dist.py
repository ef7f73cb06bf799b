"""Distributed helpers built on ``mmengine.dist`` (a no-op without a process group)."""
from typing import Tuple

import torch
from mmengine import dist as mm_dist


def gather_variable(x: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """All-gather a 1-D tensor whose length may differ between ranks.

    ``mmengine.dist.all_gather`` needs equal shapes on every rank: the sizes are gathered first
    and each rank's tensor is padded to the largest.

    Args:
        x (torch.Tensor): (n,) this rank's values.

    Returns:
        Tuple[torch.Tensor, int]: the (sum n,) concatenation in rank order and the offset of
        this rank's slice in it. Without a process group of several ranks: ``(x, 0)``.
    """
    if not mm_dist.is_distributed():
        return x, 0
    sizes = [int(s.item()) for s in
             mm_dist.all_gather(torch.tensor([x.numel()], device=x.device, dtype=torch.long))]
    padded = x.new_zeros(max(sizes))
    padded[:x.numel()] = x
    chunks = mm_dist.all_gather(padded)
    full = torch.cat([c[:n] for c, n in zip(chunks, sizes)])
    return full, sum(sizes[:mm_dist.get_rank()])
