"""Decode steps that read each passage's key/value prefix once, instead of once per row.

All ``n`` samples of all languages of a passage share its prompt prefix (the passage text, ~300
tokens); only the language instruction (~10 tokens) and the generated tokens differ. transformers'
cache stores that prefix once per *row* (55 copies for 11 languages × 5 samples) and ``torch.cat``
copies the whole cache at every step: ~0.5 GB a step at 110 rows, which made the decoder's time
grow with rows × prompt length.

Here, after the prefill, each cache layer keeps the prefix once per passage (``[groups, kv heads,
P, d]``) and only the rows' own columns per row. A one-token decode step then computes, for each
passage, ``[rows·q_heads, d] @ [d, P]`` — one matrix product over the prefix shared by all of its
rows — and the rows' own columns with a small batched product; one softmax over both parts with the
mask transformers built for the full length. The maths is the attention of the plain cache.

Layers keep transformers' own objects and mask logic (only ``update``, lengths and row selection
are replaced), so masks, sliding windows (used only while the sequence stays inside the window)
and the model's forward are unchanged. Prefill (several query tokens) goes to transformers' SDPA.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import torch

#: Registered with transformers under this name (same masks as SDPA).
ATTENTION = "xqg_shared_prefix"
_ACTIVE: ContextVar[dict[int, _Layer] | None] = ContextVar("xqg_shared_prefix", default=None)


class _Layer:
    """One cache layer: the prefix per group, the own columns per row (appended each step)."""

    def __init__(self, layer: Any, prefix_k: torch.Tensor, prefix_v: torch.Tensor, group: torch.Tensor):
        self.layer = layer
        self.pk, self.pv = prefix_k, prefix_v  # [G, hkv, P, d]
        self.group = group  # group of each row
        self.P = prefix_k.shape[2]
        layer.update = self.update
        layer.batch_select_indices = self.select
        layer.get_seq_length = self.seq_length
        layer.get_mask_sizes = self.mask_sizes

    def seq_length(self) -> int:
        return self.P + self.layer.keys.shape[-2]

    def mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.seq_length() + query_length, 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        lay = self.layer
        lay.keys = torch.cat([lay.keys, key_states], dim=-2)
        lay.values = torch.cat([lay.values, value_states], dim=-2)
        if lay.is_sliding:
            lay.cumulative_length += key_states.shape[-2]
        return lay.keys, lay.values

    def select(self, indices: torch.Tensor) -> None:
        self.layer.keys, self.layer.values = self.layer.keys[indices], self.layer.values[indices]
        self.group = self.group[indices]


def install(cache: Any, group_cache: list[tuple[torch.Tensor, torch.Tensor]], group_of_row: torch.Tensor,
            extra: int) -> bool:  # fmt: skip
    """Turn the per-row ``cache`` (after the prefill) into shared-prefix layers.

    ``group_cache[i]`` holds layer i's keys/values after stage 1 (``[G, hkv, P, d]``: each group's
    prefix, left-padded to the same width P); the rows' cache then starts with those P columns,
    which are dropped from the rows and kept once per group. False (cache untouched) when a layer
    is of another kind, or a sliding window would be passed within ``extra`` more tokens.
    """
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    layers = getattr(cache, "layers", None)
    if not layers or len(layers) != len(group_cache):
        return False
    for layer in layers:
        if type(layer) not in (DynamicLayer, DynamicSlidingWindowLayer) or not layer.is_initialized:
            return False
        if layer.is_sliding and layer.get_seq_length() + extra >= layer.sliding_window:
            return False
    active: dict[int, _Layer] = {}
    for i, (layer, (pk, pv)) in enumerate(zip(layers, group_cache, strict=True)):
        p = pk.shape[2]
        layer.keys = layer.keys[:, :, p:].contiguous()
        layer.values = layer.values[:, :, p:].contiguous()
        active[i] = _Layer(layer, pk.contiguous(), pv.contiguous(), group_of_row)
    _ACTIVE.set(active)
    return True


def uninstall() -> None:
    _ACTIVE.set(None)


def attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention over [shared prefix ; own columns] for decode steps; SDPA otherwise."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    active = _ACTIVE.get()
    lay = active.get(getattr(module, "layer_idx", -1)) if active else None
    if lay is None or query.shape[2] != 1 or dropout or kwargs.get("softcap") is not None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    b, h, _, d = query.shape
    hkv, s = key.shape[1], key.shape[2]
    g, p = h // hkv, lay.P
    scale = scaling if scaling is not None else d**-0.5
    q = query.reshape(b, hkv, g, d)
    own = torch.matmul(key.reshape(b * hkv, s, d), q.reshape(b * hkv, g, d).transpose(1, 2))
    scores = torch.empty((b, hkv, g, p + s), dtype=torch.float32, device=query.device)
    scores[..., p:] = own.view(b, hkv, s, g).transpose(2, 3)
    groups, counts = torch.unique_consecutive(lay.group, return_counts=True)
    runs, start = [], 0
    for grp, cnt in zip(groups.tolist(), counts.tolist(), strict=True):
        runs.append((grp, start, cnt))
        start += cnt
    for grp, a, cnt in runs:
        for kv in range(hkv):
            qa = q[a : a + cnt, kv].reshape(cnt * g, d)
            scores[a : a + cnt, kv, :, :p] = (qa @ lay.pk[grp, kv].transpose(0, 1)).view(cnt, g, p)
    scores *= scale
    if attention_mask is not None:
        m = attention_mask[:, :, -1:, : p + s]
        scores = scores.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else scores + m
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.matmul(probs[..., p:].reshape(b * hkv, g, s), value.reshape(b * hkv, s, value.shape[-1]))
    out = out.view(b, hkv, g, -1)
    for grp, a, cnt in runs:
        for kv in range(hkv):
            pa = probs[a : a + cnt, kv, :, :p].reshape(cnt * g, p)
            out[a : a + cnt, kv] += (pa @ lay.pv[grp, kv]).view(cnt, g, -1)
    return out.reshape(b, h, 1, -1).transpose(1, 2), None


def register(model: Any) -> bool:
    """Switch an SDPA model to :func:`attention` (registered once with transformers)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if getattr(getattr(model, "config", None), "_attn_implementation", None) not in ("sdpa", ATTENTION):
        return False
    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    model.set_attn_implementation(ATTENTION)
    return True
