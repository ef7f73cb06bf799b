"""The adaptive noise-level rule (arXiv:2403.12003, Sec. 3.2): the level is
``100 * clip(ceil(5 p) - 1, 0, 4)`` for a foreground ratio p at every bin edge and every ratio a
token grid can give; custom rules; invalid rules and NaN refused with a clear message."""
import math

import numpy as np
import pytest
import torch

from genview_mm.foreground import ForegroundPCA
from genview_mm.generation import noise_level_from_ratio, validate_noise_rule
from genview_mm.generation.analysis import analyze_pixels


def paper_rule(p):
    return int(100 * np.clip(math.ceil(5 * p) - 1, 0, 4))


@pytest.mark.parametrize('p,level', [
    (0.0, 0), (1e-9, 0), (0.2, 0), (0.2 + 1e-9, 100), (0.3, 100), (0.4, 100),
    (0.4 + 1e-9, 200), (0.6, 200), (0.6 + 1e-9, 300), (0.8, 300), (0.8 + 1e-9, 400),
    (0.99, 400), (1.0, 400)])
def test_default_rule_boundaries(p, level):
    assert noise_level_from_ratio(p) == level
    assert paper_rule(p) == level


@pytest.mark.parametrize('tokens', [49, 64, 196, 256])
def test_equals_paper_formula_on_every_reachable_ratio(tokens):
    for k in range(tokens + 1):
        p = k / tokens
        assert noise_level_from_ratio(p) == paper_rule(p), (k, tokens)


@pytest.mark.parametrize('side', [5, 10, 15])
def test_edge_ratios_from_tokens_keep_their_bin(side):
    """k of N foreground tokens with k/N exactly on a bin edge (N a multiple of 5) gets the
    lower level, as the right-closed rule says: a float32 ratio of 3/5 reads above 0.6."""
    n = side * side
    pca = ForegroundPCA(direction=torch.tensor([1.0, 0.0]), mean=torch.zeros(2), alpha=0.5,
                        encoder='e', grid=(side, side), input_size=8)

    class Encoder:  # stands for CLIPPatchEncoder: tokens and embeddings of a batch
        def encode(self, pixels):
            rows = [[1.0 if t < k else 0.0 for t in range(n)] for k in counts]
            tokens = torch.stack([torch.tensor(r) for r in rows])[..., None] * \
                torch.tensor([1.0, 0.0])
            return tokens, torch.zeros(len(counts), 4)

    counts = [n * i // 5 for i in range(6)]  # every edge: 0, 0.2, ..., 1.0
    info = analyze_pixels(Encoder(), pca, torch.zeros(len(counts), 3, 8, 8),
                          (0.2, 0.4, 0.6, 0.8), (0, 100, 200, 300, 400))
    assert info['noise_level'] == [0, 0, 100, 200, 300, 400]
    assert info['fg_ratio'] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_custom_rule():
    assert noise_level_from_ratio(0.5, bins=[0.5], levels=[10, 999]) == 10
    assert noise_level_from_ratio(0.51, bins=[0.5], levels=[10, 999]) == 999
    assert noise_level_from_ratio(0.9, bins=[], levels=[250]) == 250


@pytest.mark.parametrize('bins,levels,msg', [
    ((0.2, 0.4), (0, 100, 1000), r'integers in 0\.\.999'),
    ((0.2, 0.4), (0, -1, 100), r'integers in 0\.\.999'),
    ((0.2, 0.4), (0, 100.5, 200), r'integers in 0\.\.999'),
    ((0.4, 0.2), (0, 100, 200), 'strictly increasing'),
    ((0.2, 0.2), (0, 100, 200), 'strictly increasing'),
    ((0.2, 1.5), (0, 100, 200), r'lie in \[0, 1\]'),
    ((0.2, 0.4), (0, 100), r'len\(levels\) == len\(bins\) \+ 1'),
])
def test_invalid_rules_are_clear(bins, levels, msg):
    with pytest.raises(ValueError, match=msg):
        validate_noise_rule(bins, levels)
    with pytest.raises(ValueError, match=msg):
        noise_level_from_ratio(0.5, bins, levels)


def test_nan_ratio_rejected():
    with pytest.raises(ValueError, match='NaN'):
        noise_level_from_ratio(float('nan'))


@pytest.mark.parametrize('p', [-0.1, 1.5, float('inf'), -float('inf')])
def test_a_ratio_outside_zero_to_one_is_refused(p):
    """-0.1 got level 0 and 1.5 level 400, silently: a ratio is a share of tokens."""
    with pytest.raises(ValueError, match=r'foreground ratio must lie in \[0, 1\], got '):
        noise_level_from_ratio(p)
