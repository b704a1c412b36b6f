"""Chapter 04's second and third exercises: the reference cross-attention head against PyTorch's own attention, and
the variance experiment's reference and tolerance against what they claim."""

from __future__ import annotations

import torch
from torch.nn import functional as F

import lecture_utils.checks as check
from lecture_utils.averaging import affinity_variance as reference_affinity_variance
from lecture_utils.checks.ch04_attention import variance_tolerance
from lecture_utils.model import CrossHead, Head


def test_cross_head_matches_torch_attention_for_contexts_of_other_lengths():
    torch.manual_seed(0)
    head = CrossHead(12, 5)
    for T, S in ((3, 7), (6, 2), (4, 4)):
        x, context = torch.randn(2, T, 12), torch.randn(2, S, 12)
        want = F.scaled_dot_product_attention(head.query(x), head.key(context), head.value(context))
        out = head(x, context)
        assert out.shape == (2, T, 5)
        torch.testing.assert_close(out, want)


def test_cross_head_on_x_itself_is_an_unmasked_head():
    torch.manual_seed(0)
    cross, causal = CrossHead(12, 5), Head(12, 5, block_size=8)
    causal.load_state_dict(cross.state_dict(), strict=False)
    x = torch.randn(2, 8, 12)
    want = F.scaled_dot_product_attention(causal.query(x), causal.key(x), causal.value(x))
    torch.testing.assert_close(cross(x, x), want)
    # the first token sees the future in the encoder head, only itself in the causal one
    assert not torch.allclose(cross(x, x)[:, 0], causal(x)[:, 0])


def test_affinity_variance_reference_is_near_its_expectation_and_reproducible():
    g = torch.Generator().manual_seed(0)
    for hs in (1, 8, 64):
        tol = variance_tolerance(hs, 64, 16)
        assert abs(reference_affinity_variance(hs, False, 64, 16, g) / hs - 1) < tol
        assert abs(reference_affinity_variance(hs, True, 64, 16, g) - 1) < tol
    a = reference_affinity_variance(16, False, generator=torch.Generator().manual_seed(3))
    assert a == reference_affinity_variance(16, False, generator=torch.Generator().manual_seed(3))
    assert isinstance(a, float)


def test_the_tolerance_is_five_standard_deviations_of_the_sample_variance():
    g = torch.Generator().manual_seed(1)
    hs, B, T = 8, 16, 8
    errors = torch.tensor([reference_affinity_variance(hs, False, B, T, g) / hs - 1 for _ in range(300)])
    sd = variance_tolerance(hs, B, T) / 5
    assert 0.8 * sd < errors.std().item() < 1.25 * sd


def test_the_checks_are_exported():
    assert check.cross_head.exercise_id == "4.2"
    assert check.affinity_variance.exercise_id == "4.3"
