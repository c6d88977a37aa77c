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

from collections.abc import Sequence
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


def shared_prefixes(batch: Sequence[Any]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Rows of each group (passage) in ``batch``, and the length of the token prefix they share.

    The causal prompt puts the passage first, so a passage's languages differ only in their last
    few tokens. The prefix leaves at least one token per prompt for the second stage (it carries
    the first logits); a lone prompt shares everything but its last token. When some group shares
    nothing, every prefix is set to 0: an all-padding stage-1 row could fill a cache with NaN.
    """
    groups: dict[str, list[int]] = {}
    for r, p in enumerate(batch):
        groups.setdefault(p.group, []).append(r)
    lcp: dict[str, int] = {}
    for k, rows in groups.items():
        seqs = [batch[r].ids for r in rows]
        m = min(len(s) for s in seqs) - 1
        first = seqs[0]
        j = 0
        while j < m and all(s[j] == first[j] for s in seqs):
            j += 1
        lcp[k] = j
    if min(lcp.values()) == 0:
        lcp = dict.fromkeys(groups, 0)
    return groups, lcp


def install(cache: Any, group_cache: list[tuple[torch.Tensor, torch.Tensor]], group_of_row: torch.Tensor,
            extra: int) -> dict[int, _Layer] | None:  # fmt: skip
    """Turn the per-row ``cache`` (after the prefill) into shared-prefix layers.

    ``group_cache[i]`` holds layer i's keys/values after stage 1 (``[G, hkv, P, d]``: each group's
    prefix, left-padded to the same width P); the rows' cache then starts with those P columns,
    which are dropped from the rows and kept once per group. Returns the layers, now active (see
    :func:`activate`); None (cache untouched) when a layer is of another kind, or a sliding window
    would be passed within ``extra`` more tokens.
    """
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    layers = getattr(cache, "layers", None)
    if not layers or len(layers) != len(group_cache):
        return None
    for layer in layers:
        if type(layer) not in (DynamicLayer, DynamicSlidingWindowLayer) or not layer.is_initialized:
            return None
        if layer.is_sliding and layer.get_seq_length() + extra >= layer.sliding_window:
            return None
    active: dict[int, _Layer] = {}
    for i, (layer, (pk, pv)) in enumerate(zip(layers, group_cache, strict=True)):
        p = pk.shape[2]
        layer.keys = layer.keys[:, :, p:].contiguous()
        layer.values = layer.values[:, :, p:].contiguous()
        active[i] = _Layer(layer, pk.contiguous(), pv.contiguous(), group_of_row)
    _ACTIVE.set(active)
    return active


def activate(active: dict[int, _Layer] | None) -> None:
    """Make ``active`` (what :func:`install` returned) the layers the attention reads."""
    _ACTIVE.set(active)


def uninstall() -> None:
    _ACTIVE.set(None)


def fit_left(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """``t`` with exactly ``width`` columns along ``dim``: its last ``width``, or zeros added on the left.

    Columns are right-aligned everywhere here (padding sits on the left and is masked out), so
    dropping leading columns that no live row uses, or adding masked ones, changes no attention.
    """
    have = t.shape[dim]
    if have >= width:
        return t.narrow(dim, have - width, width)
    shape = list(t.shape)
    shape[dim] = width - have
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def prefix_width(active: dict[int, _Layer]) -> int:
    """Shared prefix columns of the active layers (the same in every layer)."""
    return next(iter(active.values())).P


def merge(a: dict[int, _Layer], b: dict[int, _Layer], prefix: int, own: int) -> None:
    """Append the rows and groups of ``b`` to ``a`` (continuous batching, ``xqg.generate.refill``).

    Groups of ``a`` without a row left are dropped first. Both sides' prefixes are then fitted to
    ``prefix`` columns and their rows' own columns to ``own`` (:func:`fit_left`); the caller fits
    the attention masks the same way. ``b``'s cache layers are emptied into ``a``'s.
    """
    first = next(iter(a.values()))
    used = torch.unique(first.group)
    keep_all = len(used) == first.pk.shape[0]
    group_a = first.group if keep_all else torch.searchsorted(used, first.group)
    group = torch.cat([group_a, next(iter(b.values())).group + len(used)])
    for i, la in a.items():
        lb = b[i]
        pk, pv = (la.pk, la.pv) if keep_all else (la.pk[used], la.pv[used])
        la.pk = torch.cat([fit_left(pk, prefix, 2), fit_left(lb.pk, prefix, 2)]).contiguous()
        la.pv = torch.cat([fit_left(pv, prefix, 2), fit_left(lb.pv, prefix, 2)]).contiguous()
        la.P = prefix
        la.group = group
        x, y = la.layer, lb.layer
        x.keys = torch.cat([fit_left(x.keys, own, 2), fit_left(y.keys, own, 2)])
        x.values = torch.cat([fit_left(x.values, own, 2), fit_left(y.values, own, 2)])
        if x.is_sliding:
            x.cumulative_length = own
        y.keys = y.values = None


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
