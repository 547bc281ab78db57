"""FSQ: code/index round trips, level counts, straight-through gradient."""
import torch

from modality_tokenizers.quantizers import FSQ


def test_codebook_size_and_index_round_trip():
    fsq = FSQ([8, 8, 8, 5, 5, 5])
    assert fsq.codebook_size == 64000
    every_index = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(every_index)  # (64000, 6)
    assert codes.min() >= -1 and codes.max() <= 1
    assert torch.equal(fsq.codes_to_indices(codes), every_index)


def test_forward_codes_match_indices():
    gen = torch.Generator().manual_seed(0)
    fsq = FSQ([8, 5, 3])
    z = torch.randn(2, 7, 3, generator=gen) * 3
    codes, indices = fsq(z)
    assert codes.shape == z.shape and indices.shape == (2, 7)
    assert torch.equal(fsq.indices_to_codes(indices), codes)


def test_each_channel_uses_exactly_its_levels():
    fsq = FSQ([8, 5, 4, 3])
    z = torch.linspace(-20, 20, 2001).unsqueeze(1).repeat(1, 4)
    codes, _ = fsq(z)
    assert [codes[:, i].unique().numel() for i in range(4)] == [8, 5, 4, 3]


def test_straight_through_gradient_flows():
    fsq = FSQ([8, 8, 8, 5, 5, 5])
    z = torch.randn(4, 6, requires_grad=True)
    codes, _ = fsq(z)
    codes.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
