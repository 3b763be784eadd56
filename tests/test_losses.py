"""seq_vcr_loss against a slow, literal transcription of Eq. 3 (docs/method.md §1)."""

import pytest
import torch

from hf_seqvcr.losses import seq_vcr_loss


def literal_seq_vcr(z, mask=None, lambda_var=1.0, lambda_cov=0.004, eps=1e-4, covariance_mode="batch"):
    """One d×d covariance per position, loops over dimensions: the formula exactly as printed."""
    z = z.double()
    if covariance_mode == "batch":
        _, T, d = z.shape
        positions = [i for i in range(T) if mask is None or bool(mask[:, i].all())]
        samples = [z[:, i, :] for i in positions]
    else:
        samples = [z[mask.bool()] if mask is not None else z.reshape(-1, z.shape[-1])]
        d = z.shape[-1]
    var_total = z.new_zeros(())
    cov_total = z.new_zeros(())
    for x in samples:
        n = x.shape[0]
        centred = x - x.mean(0)
        C = torch.zeros(d, d, dtype=torch.float64)
        for k in range(d):
            for k2 in range(d):
                C[k, k2] = (centred[:, k] * centred[:, k2]).sum() / (n - 1)
        for k in range(d):
            var_total = var_total + torch.clamp(1 - torch.sqrt(C[k, k] + eps), min=0)
            for k2 in range(d):
                if k2 != k:
                    cov_total = cov_total + C[k, k2] ** 2
    denom = len(samples) * d
    variance, covariance = var_total / denom, cov_total / denom
    return lambda_var * variance + lambda_cov * covariance, variance, covariance


def _gradient(fn, z):
    z = z.clone().requires_grad_(True)
    fn(z).backward()
    return z.grad


@pytest.mark.parametrize("shape", [(2, 2, 3), (4, 3, 6), (6, 5, 4), (9, 2, 5)])
@pytest.mark.parametrize("covariance_mode", ["batch", "batch_positions"])
@pytest.mark.parametrize("method", ["auto", "gram", "covariance"])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_literal_formula_values_and_gradients(shape, covariance_mode, method, masked):
    generator = torch.Generator().manual_seed(hash((shape, covariance_mode, method, masked)) % 2**31)
    z = torch.randn(*shape, generator=generator, dtype=torch.float64) * 0.7
    mask = None
    if masked:
        mask = torch.ones(shape[:2], dtype=torch.bool)
        mask[0, -1] = False  # right padding in one row: the last position is not valid in every row
    kwargs = dict(lambda_var=0.3, lambda_cov=0.5, eps=1e-4, covariance_mode=covariance_mode)
    out = seq_vcr_loss(z, mask, method=method, **kwargs)
    ref_loss, ref_var, ref_cov = literal_seq_vcr(z, mask, **kwargs)
    torch.testing.assert_close(out.loss.double(), ref_loss, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(out.variance.double(), ref_var, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(out.covariance.double(), ref_cov, rtol=1e-5, atol=1e-7)
    grad = _gradient(lambda x: seq_vcr_loss(x, mask, method=method, **kwargs).loss, z)
    ref_grad = _gradient(lambda x: literal_seq_vcr(x, mask, **kwargs)[0], z)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["auto", "covariance"])
def test_many_more_samples_than_dimensions_stay_within_1e5_of_float64(method):
    """n = 4096 ≫ d = 4: subtracting the diagonal from ‖C‖² lost fp32 digits (rel. 2.4e-4 before the fix)."""
    z = torch.randn(4096, 1, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1
    out = seq_vcr_loss(z, method=method)
    reference = seq_vcr_loss(z.double(), method="covariance")
    assert out.covariance.dtype == torch.float32
    torch.testing.assert_close(out.covariance.double(), reference.covariance, rtol=1e-5, atol=0)
    torch.testing.assert_close(out.loss.double(), reference.loss, rtol=1e-5, atol=0)


def test_gram_and_covariance_forms_agree_at_paper_shape():
    z = torch.randn(32, 8, 256)
    gram = seq_vcr_loss(z, method="gram")
    covariance = seq_vcr_loss(z, method="covariance")
    torch.testing.assert_close(gram.loss, covariance.loss, rtol=1e-5, atol=0)


def test_statistics_in_fp32_for_bf16_inputs():
    z = torch.randn(8, 4, 16)
    out = seq_vcr_loss(z.bfloat16())
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss, seq_vcr_loss(z.bfloat16().float()).loss)


def test_collapsed_representations_are_penalised_more_than_diverse_ones():
    diverse = torch.randn(16, 4, 8) * 2
    collapsed = diverse[:1].expand(16, 4, 8) + 1e-3 * torch.randn(16, 4, 8)
    assert seq_vcr_loss(collapsed).variance > 0.9
    assert seq_vcr_loss(diverse).variance < seq_vcr_loss(collapsed).variance


def test_no_position_valid_in_every_row_gives_zero_with_a_graph():
    z = torch.randn(3, 2, 4, requires_grad=True)
    mask = torch.tensor([[True, False], [False, True], [True, True]])
    out = seq_vcr_loss(z, mask)
    assert out.loss.item() == 0.0
    out.loss.backward()
    assert z.grad is not None


def test_batch_smaller_than_two_is_rejected():
    with pytest.raises(ValueError, match="batch of at least 2"):
        seq_vcr_loss(torch.randn(1, 4, 8))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(covariance_mode="tokens"), "covariance_mode"),
        (dict(method="svd"), "method"),
    ],
)
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        seq_vcr_loss(torch.randn(4, 2, 3), **kwargs)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="batch, positions, dim"):
        seq_vcr_loss(torch.randn(4, 3))
    with pytest.raises(ValueError, match="mask"):
        seq_vcr_loss(torch.randn(4, 3, 2), torch.ones(4, 2, dtype=torch.bool))
