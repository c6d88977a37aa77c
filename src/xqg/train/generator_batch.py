"""Batches for generator training: tokenised prompts + questions, and the loss at label positions only.

A collator turns a list of :class:`~xqg.train.generator_data.GenExample` into the dict a
``transformers.Trainer`` feeds to ``compute_loss``: model inputs plus ``labels`` (-100 = no loss;
``labels[b, t]`` is the token *at* ``t``) and, for causal models, ``keep`` — ``keep[b, t]`` is True
where the logits at ``t`` are needed, i.e. where ``labels[b, t + 1]`` is a target token.
:func:`batch_loss` passes ``keep`` to the model as a boolean ``logits_to_keep``, so the decoder runs
to hidden states everywhere but the output layer (Gemma: 262,144 words) is applied only at the
question positions.

Layouts (``GenTrainConfig.packing``): left-padded rows (:func:`collate_causal`), or rows packed with
prefix sharing (:func:`collate_packed`, the default: a passage asked about in 8 languages is computed
once); seq2seq (mT5/T5) uses the paper's input (:func:`collate_seq2seq`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from xqg.generate.prompts import causal_prompt, paper_prompt
from xqg.train.generator_data import GenExample

if TYPE_CHECKING:
    from xqg.train.generator import GenTrainConfig

#: A batch: model inputs (``input_ids``, ``attention_mask``, ``position_ids``), ``labels``, ``keep``.
Batch = dict[str, Any]


def n_targets(batch: Batch) -> int:
    """Number of tokens that carry a loss in ``batch``."""
    return int((batch["labels"] != -100).sum())


def _truncate_chars(tokenizer: Any, text: str, max_tokens: int) -> str:
    """Cut ``text`` at a token boundary so it has at most ``max_tokens`` tokens (original characters)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_tokens:
        return text
    return text[: enc["offset_mapping"][max_tokens - 1][1]]


def causal_ids(tokenizer: Any, ex: GenExample, cfg: GenTrainConfig) -> tuple[list[int], list[int]]:
    """(prompt ids with BOS, target ids ending in EOS) for one example, both truncated per config."""
    source = _truncate_chars(tokenizer, ex.source, cfg.max_source_tokens)
    prompt = tokenizer(causal_prompt(ex.lang, ex.title, source), add_special_tokens=True)["input_ids"]
    target = tokenizer(" " + ex.target, add_special_tokens=False)["input_ids"][: cfg.max_target_tokens - 1]
    return list(prompt), [*target, tokenizer.eos_token_id]


def _keep_mask(labels: Any) -> Any:
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return keep


def collate_causal(tokenizer: Any, examples: Sequence[GenExample], cfg: GenTrainConfig) -> Batch:
    """Left-pad so every target ends at the last position; labels only on target tokens.

    ``position_ids`` count from the first real token, so a left-padded example is computed exactly
    as it would be alone. (Without packing, left padding keeps the needed logits in one block at
    the end; with the boolean ``keep`` mask the position does not matter, but the layout is kept
    because it is also what batched generation uses.)
    """
    import torch

    pairs = [causal_ids(tokenizer, ex, cfg) for ex in examples]
    length = max(len(p) + len(t) for p, t in pairs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(pairs), length), pad, dtype=torch.long)
    mask = torch.zeros((len(pairs), length), dtype=torch.long)
    labels = torch.full((len(pairs), length), -100, dtype=torch.long)
    for i, (p, t) in enumerate(pairs):
        seq = p + t
        ids[i, length - len(seq) :] = torch.tensor(seq)
        mask[i, length - len(seq) :] = 1
        labels[i, length - len(t) :] = torch.tensor(t)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "position_ids": position_ids,
        "labels": labels,
        "keep": _keep_mask(labels),
    }


def collate_packed(
    tokenizer: Any, examples: Sequence[GenExample], cfg: GenTrainConfig, dtype: Any = None
) -> Batch:
    """Pack a batch into few rows that compute each shared passage once (prefix sharing).

    Examples with the same source share their prompt's token prefix (``<bos>Passage: …``, up to
    where the prompts differ, at most all but the last prompt token). A row holds, per source,
    that prefix once and then each example's own suffix (rest of the prompt + question + eos).
    A 4-D additive attention mask lets a prefix token see the earlier tokens of its prefix and a
    suffix token see its prefix plus the earlier tokens of its own suffix; ``position_ids``
    continue from the prefix, so every example is computed exactly as if alone (tested), while an
    XQuAD passage asked about in 8 languages costs one passage forward instead of eight.

    Source groups are put into rows of at most ``cfg.max_row_tokens`` tokens (a larger group gets
    a row of its own), because attention over a row is quadratic in its length: a batch of 16
    unrelated passages in one row would cost more than padding them. Rows are right-padded;
    padding tokens see only themselves and carry no loss.
    """
    import torch

    dtype = dtype or torch.float32
    groups: dict[tuple[str, str], list[tuple[list[int], list[int]]]] = {}
    for ex in examples:
        groups.setdefault((ex.source, ex.title), []).append(causal_ids(tokenizer, ex, cfg))
    # one group → (ids, positions, labels, segment ids: -1 = shared prefix, k = k-th suffix)
    packed: list[tuple[list[int], list[int], list[int], list[int]]] = []
    for members in groups.values():
        prompts = [p for p, _ in members]
        c = min(len(p) for p in prompts) - 1  # every suffix keeps >= 1 prompt token
        for p in prompts[1:]:
            c = next((k for k in range(c) if p[k] != prompts[0][k]), c)
        ids, pos, lab, seg = prompts[0][:c], list(range(c)), [-100] * c, [-1] * c
        for k, (p, t) in enumerate(members):
            suffix = p[c:] + t
            ids = ids + suffix
            pos += list(range(c, c + len(suffix)))
            lab += [-100] * (len(p) - c) + t
            seg += [k] * len(suffix)
        packed.append((ids, pos, lab, seg))
    rows: list[list[int]] = []  # group indices per row, first fit in batch order
    sizes: list[int] = []
    for g, (ids, *_rest) in enumerate(packed):
        for r, size in enumerate(sizes):
            if size + len(ids) <= cfg.max_row_tokens:
                rows[r].append(g)
                sizes[r] += len(ids)
                break
        else:
            rows.append([g])
            sizes.append(len(ids))
    n = max(sizes)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), n), pad, dtype=torch.long)
    position_ids = torch.zeros((len(rows), n), dtype=torch.long)
    labels = torch.full((len(rows), n), -100, dtype=torch.long)
    mask = torch.full((len(rows), 1, n, n), torch.finfo(dtype).min, dtype=dtype)
    idx = torch.arange(n)
    for r, members in enumerate(rows):
        grp = torch.full((n,), -1, dtype=torch.long)  # -1 = padding
        seg = torch.full((n,), -2, dtype=torch.long)
        at = 0
        for g in members:
            ids, pos, lab, sg = packed[g]
            sl = slice(at, at + len(ids))
            input_ids[r, sl] = torch.tensor(ids)
            position_ids[r, sl] = torch.tensor(pos)
            labels[r, sl] = torch.tensor(lab)
            grp[sl] = g
            seg[sl] = torch.tensor(sg)
            at += len(ids)
        allowed = (
            (grp[:, None] == grp[None, :])
            & (grp[:, None] >= 0)
            & ((seg[None, :] == -1) | (seg[:, None] == seg[None, :]))
            & (idx[None, :] <= idx[:, None])
        )
        allowed |= torch.eye(n, dtype=torch.bool)  # padding attends to itself: no empty softmax rows
        mask[r, 0].masked_fill_(allowed, 0.0)
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "position_ids": position_ids,
        "labels": labels,
        "keep": _keep_mask(labels),
    }


def collate_seq2seq(tokenizer: Any, examples: Sequence[GenExample], cfg: GenTrainConfig) -> Batch:
    """The paper's input (``paper_prompt``, truncated to ``max_source_tokens``) → question labels."""
    enc = tokenizer(
        [paper_prompt(e.lang, e.title, e.source) for e in examples],
        max_length=cfg.max_source_tokens,
        truncation=True,
        padding=True,
        return_tensors="pt",
    )
    tgt = tokenizer(
        [e.target for e in examples],
        max_length=cfg.max_target_tokens,
        truncation=True,
        padding=True,
        return_tensors="pt",
    )
    labels = tgt["input_ids"].masked_fill(tgt["attention_mask"] == 0, -100)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


def make_batch(tokenizer: Any, examples: Sequence[GenExample], cfg: GenTrainConfig, backend: str) -> Batch:
    """The configured batch layout: seq2seq, packed causal (default) or left-padded causal."""
    if backend == "seq2seq":
        return collate_seq2seq(tokenizer, examples, cfg)
    if cfg.packing:
        import torch

        return collate_packed(tokenizer, examples, cfg, torch.bfloat16 if cfg.dtype == "bfloat16" else None)
    return collate_causal(tokenizer, examples, cfg)


def batch_loss(model: Any, batch: Batch, backend: str, logits: str = "targets") -> Any:
    """Mean cross-entropy over the target tokens of ``batch`` (the quantity training minimises).

    Causal: with ``logits="targets"`` the model runs to hidden states at every position and applies
    its output layer only where ``batch["keep"]`` is True (transformers' boolean ``logits_to_keep``):
    one vocabulary projection per question token instead of one per input token, and the
    ``(tokens, vocabulary)`` logits of the prompt are never materialised. ``"all"`` computes them
    everywhere (the slow reference: same value). Seq2seq: every decoder position is a label
    position, so the model's own loss is used.
    """
    import torch
    import torch.nn.functional as F

    inputs = {k: v for k, v in batch.items() if k not in ("labels", "keep")}
    labels = batch["labels"]
    if backend == "seq2seq":
        return model(**inputs, labels=labels).loss
    keep = batch["keep"]
    targets = labels[:, 1:][keep[:, :-1]]
    if logits == "targets":
        out = model(**inputs, logits_to_keep=keep, use_cache=False)
        lg = out.logits.reshape(-1, out.logits.shape[-1])
    else:
        out = model(**inputs, use_cache=False)
        lg = out.logits[:, :-1][keep[:, :-1]]
    return F.cross_entropy(lg.float(), targets.to(torch.long))
