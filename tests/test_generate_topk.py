"""The sampler's two-stage top-k is exact: same values and tokens as ``torch.topk``."""

from __future__ import annotations

import pytest
import torch

from xqg.generate.backends import top_k


@pytest.mark.parametrize("vocab", [262_144, 262_144 + 77, 50_000])
def test_two_stage_top_k_equals_torch_topk(vocab: int) -> None:
    g = torch.Generator().manual_seed(vocab)
    logits = torch.randn(7, vocab, generator=g)  # float32: no ties
    logits[2, 5:900] = float("-inf")  # a row with blocked tokens
    logits[3, -1] = 50.0  # the best token in the tail that fills no whole chunk
    values, index = top_k(logits, 10)
    ref_v, ref_i = logits.topk(10, dim=-1)
    assert torch.equal(values, ref_v)
    assert torch.equal(index, ref_i)
    assert int(index[3, 0]) == vocab - 1


def test_top_k_orders_ties_by_token_id() -> None:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(5, 262_144, generator=g) * 0.5).to(torch.bfloat16)  # many equal values
    logits[:, 1000] = logits[:, 7] = logits[:, 200_000] = 9.0  # a three-way tie at the top
    values, index = top_k(logits, 10)
    assert torch.equal(values, logits.topk(10, dim=-1).values)
    assert index[:, :3].tolist() == [[7, 1000, 200_000]] * 5
    assert torch.equal(logits.gather(1, index), values)
    for row_v, row_i in zip(values.tolist(), index.tolist(), strict=True):
        pairs = list(zip(row_v, row_i, strict=True))
        assert pairs == sorted(pairs, key=lambda p: (-p[0], p[1]))


def test_top_k_small_vocabulary_uses_plain_topk() -> None:
    logits = torch.tensor([[0.1, 3.0, 2.0, 3.0, -1.0]])
    values, index = top_k(logits, 3)
    assert values.tolist() == [[3.0, 3.0, 2.0]]
    assert index.tolist() == [[1, 3, 2]]
