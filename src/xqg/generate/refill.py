"""Continuous batching for the causal sampler: rows that finish are refilled from the next passages.

A batch of the plain loop (:meth:`CausalGenerator._decode_batch`) runs until its longest query
ends. Queries average ~20 tokens but some run to ``max_new_tokens``, so most steps of a batch's
tail ran a handful of rows, while a decode step costs nearly as much for 2 rows as for 100 (it
reads all of the model's weights; measured in ``docs/generation.md``: 142 ms at 2 rows, 424 ms at
220, on 2 cores).

Here the live rows are one stream. Passages enter in the plain loop's order (longest prompt
first), each as one *unit* (its languages, split in chunks of at most ``batch_size`` prompts),
whenever the unfinished rows leave room for the unit's ``len(unit) · n`` rows under the cap of
``batch_size · n`` rows. The units admitted together are prefilled in one call (with their shared
prompt prefix, as in a batch), and their rows join the live ones by :func:`merge_states`: every
row's columns stay right-aligned, so the shared prefixes and the rows' own columns are padded on
the left to common widths (masked, so the attention is unchanged) and appended. Each row stops on
its own after ``max_new_tokens``.

Sampling uses one generator seeded per call, so the output depends only on the items, ``n``, the
seed and the config, as in the plain loop (a resumed shard equals an uninterrupted one); it is not
the plain loop's output (its samples are drawn in a different order), which is why
:attr:`GeneratorConfig.refill` is part of a generation folder's config hash.

It is opt-in (``refill: false`` by default): on 2 CPU cores one large batch (132 prompts, 660
rows) ran 25.5 q/s and refill at the same cap 20.9 q/s, because a full step is compute-bound and
each merge copies the cache and pads every row's own columns (``docs/generation.md``). It is kept
for devices where a step is dominated by reading the weights (a GPU; not measured here).

Refill needs the shared-prefix decode state (``xqg.generate.shared_prefix``), which holds each
passage's prefix once; where a unit cannot have it (a prompt sharing nothing, or a sliding window
that the padded widths would pass), the unit waits until the live rows have drained.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from xqg.generate import shared_prefix


def units(ordered_groups: Sequence[list[Any]], batch_size: int) -> list[list[Any]]:
    """Each group (one passage's prompts) in chunks of at most ``batch_size`` prompts, in order."""
    out: list[list[Any]] = []
    for g in ordered_groups:
        for s in range(0, len(g), batch_size):
            out.append(g[s : s + batch_size])
    return out


def used_widths(mask: torch.Tensor, prefix: int) -> tuple[int, int]:
    """Columns of the shared prefix and of the rows' own part that some row of ``mask`` attends to."""

    def used(part: torch.Tensor) -> int:
        cols = part.any(0).nonzero()
        return part.shape[1] - int(cols[0]) if len(cols) else 0

    return used(mask[:, :prefix]), used(mask[:, prefix:])


def merge_states(a: Any, b: Any) -> Any:
    """One decode state of the rows of ``a`` followed by those of ``b`` (both shared-prefix states)."""
    (ma, cache, sa), (mb, _, sb) = a, b
    pa, pb = shared_prefix.prefix_width(sa), shared_prefix.prefix_width(sb)
    (ua, oa), (ub, ob) = used_widths(ma, pa), used_widths(mb, pb)
    width, own = max(ua, ub), max(oa, ob)

    def fit(m: torch.Tensor, p: int) -> torch.Tensor:
        return torch.cat(
            [shared_prefix.fit_left(m[:, :p], width, 1), shared_prefix.fit_left(m[:, p:], own, 1)], dim=1
        )

    mask = torch.cat([fit(ma, pa), fit(mb, pb)])
    shared_prefix.merge(sa, sb, width, own)
    return mask, cache, sa


def decode_stream(
    gen: Any, unit_list: list[list[Any]], n: int, seed: int
) -> Iterator[tuple[list[Any], list[list[str]]]]:
    """Yield ``(unit, texts)`` as each unit's rows have all finished (``texts``: n per prompt).

    ``gen`` is a :class:`~xqg.generate.backends.CausalGenerator` (its ``_start``, ``_select``,
    ``_step``, ``_sample`` and masks); its ``refill_stats`` count admissions into live rows.
    """
    cfg = gen.config
    dev = gen.device
    cap = max(cfg.batch_size * n, 1)
    max_new = cfg.max_new_tokens
    window = gen.sliding_window
    rng = torch.Generator(device=dev)
    rng.manual_seed(seed)
    queue = deque(unit_list)
    tokens: list[list[int] | None] = []
    unit_of: list[int] = []
    admitted: list[tuple[list[Any], int]] = []  # (unit, its first row)
    left: list[int] = []
    state: Any = None
    logits = torch.zeros(0)
    active = torch.zeros(0, dtype=torch.long, device=dev)  # the row of each state row
    done = torch.zeros(0, dtype=torch.bool, device=dev)
    no_text = done.clone()
    count = torch.zeros(0, dtype=torch.long, device=dev)
    stats = gen.refill_stats = {"units": 0, "prefills": 0, "merges": 0, "steps": 0, "row_steps": 0}

    def mergeable(prompts: list[Any], live: torch.Tensor) -> bool:
        """Whether ``prompts`` can join the live rows (shared-prefix state, window not passed)."""
        mask, _, sp = state
        if sp is None:
            return False
        _, lcp = shared_prefix.shared_prefixes(prompts)
        if max(lcp.values()) == 0:
            return False
        pb = max(lcp.values())
        ob = max(len(p.ids) - lcp[p.group] for p in prompts)
        ua, oa = used_widths(mask[live], shared_prefix.prefix_width(sp))
        return window is None or max(ua, pb) + max(oa, ob) + max_new < window

    try:
        while queue or len(active):
            live_rows = (~done).nonzero().squeeze(1)
            live = len(live_rows)
            take: list[list[Any]] = []
            taken = 0  # prompts in take
            while queue and (live + (taken + len(queue[0])) * n <= cap or (not live and not take)):
                if live and not mergeable([p for u in take for p in u] + queue[0], live_rows):
                    break
                take.append(queue.popleft())
                taken += len(take[-1])
            if take:
                prompts = [p for u in take for p in u]
                first = r = len(tokens)
                for u in take:  # rows are prompt-major, so each unit's rows are consecutive
                    admitted.append((u, r))
                    left.append(len(u) * n)
                    unit_of += [len(left) - 1] * (len(u) * n)
                    r += len(u) * n
                tokens += [[] for _ in range(len(prompts) * n)]
                stats["units"] += len(take)
                new_logits, new_state = gen._start(prompts, n)
                stats["prefills"] += 1
                rows = torch.arange(first, first + len(prompts) * n, device=dev)
                zeros = torch.zeros(len(rows), dtype=torch.bool, device=dev)
                if live and new_state[2] is not None and state[2] is not None:
                    if len(live_rows) < len(active):
                        state = gen._select(state, live_rows)
                        logits, active = logits[live_rows], active[live_rows]
                        done, no_text, count = done[live_rows], no_text[live_rows], count[live_rows]
                    state = merge_states(state, new_state)
                    stats["merges"] += 1
                    logits = torch.cat([logits, new_logits])
                    active = torch.cat([active, rows])
                    done = torch.cat([done, zeros])
                    no_text = torch.cat([no_text, ~zeros])
                    count = torch.cat([count, torch.zeros(len(rows), dtype=torch.long, device=dev)])
                elif live:  # pragma: no cover - mergeable() predicted otherwise
                    raise RuntimeError("a refill unit lost its shared-prefix state")
                else:
                    state, logits, active = new_state, new_logits, rows
                    done, no_text = zeros, ~zeros
                    count = torch.zeros(len(rows), dtype=torch.long, device=dev)
            nxt = gen._sample(logits, rng, no_text)
            stats["steps"] += 1
            stats["row_steps"] += len(nxt)
            was_live = ~done
            for row, tok, d in zip(active.tolist(), nxt.tolist(), done.tolist(), strict=True):
                if not d:
                    tokens[row].append(tok)  # type: ignore[union-attr]
            count += was_live.long()
            done = done | gen.stop_mask[nxt] | (count >= max_new)
            no_text &= gen.blank_mask[nxt]
            for row in active[was_live & done].tolist():
                u = unit_of[row]
                left[u] -= 1
                if left[u] == 0:
                    unit, r0 = admitted[u]
                    rows_u = range(r0, r0 + len(unit) * n)
                    texts = gen._texts([tokens[r] for r in rows_u], n)  # type: ignore[misc]
                    for r in rows_u:
                        tokens[r] = None
                    yield unit, texts
            if bool(done.all()):
                state, active = None, active[:0]
                done, no_text, count = done[:0], no_text[:0], count[:0]
                continue
            n_done = int(done.sum())
            if n_done and n_done >= gen.drop_share * len(active):
                keep = (~done).nonzero().squeeze(1)
                state = gen._select(state, keep)
                active, nxt = active[keep], nxt[keep]
                done, no_text, count = done[keep], no_text[keep], count[keep]
            logits, state = gen._step(state, nxt)
    finally:
        shared_prefix.uninstall()
