"""The bi-encoder on a tiny local model: ordering, pooling, normalisation, prefixes, truncation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import TINY_TEXTS
from xqg.errors import XqgError
from xqg.models.encoder import BiEncoder, get_pooling, pool_mean
from xqg.types import Passage


@pytest.fixture()
def enc(tiny_encoder_config):
    return BiEncoder(tiny_encoder_config)


def test_batched_equals_one_by_one_in_input_order(enc):
    batched = enc.encode_queries(TINY_TEXTS)
    single = np.stack([enc.encode_queries([t])[0] for t in TINY_TEXTS])
    assert batched.shape == (len(TINY_TEXTS), enc.dim)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_normalisation_and_pooling_choices(tiny_encoder_config):
    normed = BiEncoder(tiny_encoder_config).encode_passages(TINY_TEXTS)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-5)
    raw = BiEncoder(tiny_encoder_config, normalize=False).encode_passages(TINY_TEXTS)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    cls = BiEncoder(tiny_encoder_config, pooling="cls").encode_passages(TINY_TEXTS)
    assert not np.allclose(cls, normed, atol=1e-3)


def test_prefixes_and_kinds_differ(enc):
    q = enc.encode_queries(["capital of Russia"])
    p = enc.encode_passages(["capital of Russia"])
    assert not np.allclose(q, p, atol=1e-4)  # "query: " vs "passage: "


def test_truncation_uses_the_max_length_of_each_side(tiny_encoder_config):
    enc = BiEncoder(tiny_encoder_config, query_max_length=6)
    long = "Where was the treaty signed and by whom ? " * 10
    ids = enc.tokenizer("query: " + long, max_length=6, truncation=True)["input_ids"]
    shorter = enc.tokenizer.decode(ids[1:-1])
    # Same first tokens → same vector once both are cut to 6 tokens.
    np.testing.assert_allclose(
        enc.encode_queries([long]), enc.encode_queries([long + " more words"]), atol=1e-6
    )
    assert len(ids) == 6 and shorter


def test_title_is_prepended_only_when_asked(tiny_encoder_config):
    p = Passage("d1", "Helsinki on Suomen pääkaupunki.", title="Suomi")
    plain = BiEncoder(tiny_encoder_config).encode_passages([p])
    titled = BiEncoder(tiny_encoder_config, use_title=True).encode_passages([p])
    assert not np.allclose(plain, titled, atol=1e-4)


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool_mean(hidden, mask).tolist() == [[2.0, 2.0]]


def test_unknown_pooling_lists_choices():
    with pytest.raises(XqgError, match="mean, cls"):
        get_pooling("max")


def test_empty_input(enc):
    assert enc.encode_queries([]).shape == (0, enc.dim)
