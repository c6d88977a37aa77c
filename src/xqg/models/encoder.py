"""The bi-encoder: one transformer that embeds queries and passages into the same space.

Why not call ``SentenceTransformer.encode``? Cross-lingual retrieval needs query/passage
prefixes, *separate* max lengths for the two sides (the paper uses 32 / 128), a choice of
pooling and normalisation recorded in every manifest, and bounded, order-preserving batches
that a sharded job can resume. This class does that over any HF model in ~150 lines and is
measured against sentence-transformers in ``bench/encode_throughput.py``.

Speed on CPU comes from tokenising each input list once, sorting by *token* length so each
batch pads to its own longest member, and running under ``torch.inference_mode``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from xqg.config import EncoderConfig
from xqg.errors import XqgError
from xqg.types import Passage

Kind = Literal["query", "passage"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pool_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors, padding excluded (e5, sentence-transformers default)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def pool_cls(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The first token's vector (DPR, Tevatron's mBERT/XLM-R retrievers in the paper)."""
    return hidden[:, 0]


POOLING: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mean": pool_mean,
    "cls": pool_cls,
}


def get_pooling(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    try:
        return POOLING[name]
    except KeyError:
        raise XqgError(f"unknown pooling '{name}'; choose one of: {', '.join(POOLING)}") from None


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU, so the same command uses a GPU when there is one."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def token_ids(tokenizer: Any, texts: list[str], max_length: int | None) -> list[list[int]]:
    """Token ids (special tokens included, no padding) of each text, cut at ``max_length`` unless None."""
    cut = {"max_length": max_length, "truncation": True} if max_length is not None else {"truncation": False}
    return tokenizer(
        texts, padding=False, return_attention_mask=False, return_token_type_ids=False, verbose=False, **cut
    )["input_ids"]


class BiEncoder:
    """Embeds queries and passages with one model, per an :class:`EncoderConfig`."""

    def __init__(self, config: EncoderConfig | None = None, **overrides: Any) -> None:
        from transformers import AutoTokenizer

        from xqg.models.sources import resolve_model

        cfg = (config or EncoderConfig()).model_copy(update=overrides)
        self.config = cfg
        self.device = resolve_device(cfg.device)
        if cfg.threads and self.device.type == "cpu":
            torch.set_num_threads(cfg.threads)
        self.model_path = resolve_model(cfg.model)
        p_path = resolve_model(cfg.passage_model) if cfg.passage_model is not None else self.model_path
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        except OSError as e:
            raise XqgError(f"cannot load model '{cfg.model}' ({self.model_path}): {e}") from e
        self.onnx_exports: dict[str, Any] = {}
        load = self._load_onnx if cfg.engine == "onnx" else self._load_torch
        self.model = load(self.model_path, cfg.model)
        # Separate towers: passages go through their own weights (e.g. the frozen teacher of a
        # distilled query encoder, so an existing passage index stays valid).
        self.passage_model = self.model if p_path == self.model_path else load(p_path, cfg.passage_model)
        self.dim = self._hidden_size(self.model_path)
        if p_path != self.model_path and self._hidden_size(p_path) != self.dim:
            raise XqgError(
                f"passage model '{cfg.passage_model}' has dimension {self._hidden_size(p_path)}, "
                f"the query model {self.dim}: towers must share the space"
            )
        self._pool = get_pooling(cfg.pooling)

    def _load_torch(self, path: str, spec: str | None) -> Any:
        from transformers import AutoModel

        try:
            model = AutoModel.from_pretrained(path, dtype=_DTYPES[self.config.dtype])
        except OSError as e:
            raise XqgError(f"cannot load model '{spec}' ({path}): {e}") from e
        return model.to(self.device).eval()

    def _load_onnx(self, path: str, spec: str | None) -> Any:
        """The cached ONNX export of ``path`` (exported on first use) in an ONNX Runtime session."""
        from xqg.models.onnx_engine import OnnxTower, ensure_onnx, export_info

        if self.config.dtype != "float32":
            raise XqgError(
                f"encoder.engine onnx runs float32 (int8 weights with onnx_quantization: int8), "
                f"not dtype {self.config.dtype}"
            )
        export = ensure_onnx(path, self.config.onnx_quantization)
        self.onnx_exports[path] = export_info(export)
        return OnnxTower(export / "model.onnx", threads=self.config.threads, device=self.device.type)

    @staticmethod
    def _hidden_size(path: str) -> int:
        from transformers import AutoConfig

        return int(AutoConfig.from_pretrained(path).hidden_size)

    def _forward(self, model: Any, batch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states of one padded batch, from either engine, as a torch tensor."""
        if self.config.engine == "onnx":
            return torch.from_numpy(model(batch.numpy(), mask.numpy()))
        batch, mask = batch.to(self.device), mask.to(self.device)
        return model(input_ids=batch, attention_mask=mask).last_hidden_state

    #: Settings that change how texts are prepared or batched, not which weights run.
    _TEXT_SETTINGS = frozenset(
        {"query_prefix", "passage_prefix", "query_max_length", "passage_max_length", "use_title",
         "title_sep", "batch_size", "normalize"}
    )  # fmt: skip

    def with_settings(self, **changes: Any) -> BiEncoder:
        """A view sharing this encoder's loaded model with other text settings (e.g. max length
        32 for generated queries, as the paper does) — no second copy of the weights."""
        bad = set(changes) - self._TEXT_SETTINGS
        if bad:
            raise XqgError(f"with_settings changes text settings only, not {sorted(bad)}")
        view = copy.copy(self)
        view.config = self.config.model_copy(update=changes)
        return view

    # -- public API -------------------------------------------------------------------------
    def encode_queries(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed query texts (prefix + ``query_max_length``)."""
        return self.encode(texts, kind="query", progress=progress)

    def encode_passages(
        self, passages: Sequence[Passage] | Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed passages (prefix + optional title + ``passage_max_length``)."""
        texts = [self.passage_text(p) if isinstance(p, Passage) else p for p in passages]
        return self.encode(texts, kind="passage", progress=progress)

    def passage_text(self, p: Passage) -> str:
        return p.full_text(self.config.title_sep) if self.config.use_title else p.text

    def encode(
        self, texts: Sequence[str], *, kind: Kind, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed ``texts`` in input order as float32 ``(n, dim)``; ``progress(n_done)`` after each batch."""
        cfg = self.config
        if kind == "query":
            prefix, max_len, model = cfg.query_prefix, cfg.query_max_length, self.model
        elif kind == "passage":
            prefix, max_len, model = cfg.passage_prefix, cfg.passage_max_length, self.passage_model
        else:
            raise XqgError(f"kind must be 'query' or 'passage', not '{kind}'")
        n = len(texts)
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        ids = token_ids(self.tokenizer, [prefix + t for t in texts], max_len)
        # Longest first: the first batch shows peak memory at once, and equal lengths pad little.
        order = sorted(range(n), key=lambda i: -len(ids[i]))
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        bs = cfg.batch_size
        with torch.inference_mode():
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                width = len(ids[idx[0]])
                batch = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, i in enumerate(idx):
                    row = ids[i]
                    batch[r, : len(row)] = torch.tensor(row, dtype=torch.long)
                    mask[r, : len(row)] = 1
                hidden = self._forward(model, batch, mask)
                emb = self._pool(hidden, mask.to(hidden.device)).float()
                if cfg.normalize:
                    emb = torch.nn.functional.normalize(emb, p=2, dim=-1)
                out[idx] = emb.cpu().numpy()
                if progress is not None:
                    progress(len(idx))
        return out

    def truncated(self, texts: Sequence[str], *, kind: Kind) -> np.ndarray:
        """Which ``texts`` :meth:`encode` cuts at ``kind``'s max length (see :func:`truncated_mask`)."""
        return truncated_mask(self.tokenizer, self.config, texts, kind=kind)

    def describe(self) -> dict[str, Any]:
        """What a manifest records about this encoder: the config plus where the weights came from."""
        from xqg.models.sources import model_info

        info = {"config": self.config.model_dump(), "model": model_info(self.config.model), "dim": self.dim}
        if self.config.passage_model is not None:
            info["passage_model"] = model_info(self.config.passage_model)
        info["engine"] = {"name": self.config.engine}
        if self.config.engine == "onnx":
            info["engine"].update(quantization=self.config.onnx_quantization,
                                  exports=list(self.onnx_exports.values()))  # fmt: skip
        return info


# -- truncation ------------------------------------------------------------------------------------


def truncated_mask(tokenizer: Any, config: EncoderConfig, texts: Sequence[str], *, kind: Kind) -> np.ndarray:
    """True where ``config``'s prefix + text is longer than ``kind``'s max length in ``tokenizer``'s
    tokens (special tokens count), i.e. where :meth:`BiEncoder.encode` cuts it. Tokenises without
    truncation, apart from encoding, so the vectors are untouched by the count."""
    if kind == "query":
        prefix, max_len = config.query_prefix, config.query_max_length
    else:
        prefix, max_len = config.passage_prefix, config.passage_max_length
    if not texts:
        return np.zeros(0, dtype=bool)
    ids = token_ids(tokenizer, [prefix + t for t in texts], None)
    return np.fromiter((len(x) > max_len for x in ids), dtype=bool, count=len(ids))


#: Share of a language's texts cut at the max length past which encode and search warn.
TRUNCATION_WARN_SHARE = 0.05
#: The language key of texts whose language is not known (BCP-47 "undetermined").
UNKNOWN_LANG = "und"


class TruncationWarning(UserWarning):
    """Many texts of a language were cut at the max length (each then retrieves with less of itself)."""


class TruncationCounter:
    """Counts, per language, the texts an encoder cuts at its max length, and reports them.

    ``add`` takes one batch; :meth:`summary` is what manifests record::

        {"max_length": 32, "warn_share": 0.05, "truncated": 3,
         "by_lang": {"sw": {"texts": 40, "truncated": 3, "share": 0.075}}}

    Encoders without :meth:`BiEncoder.truncated` (test fakes, other engines) are not counted:
    :meth:`summary` then says ``"counted": false`` instead of claiming zero.
    """

    def __init__(
        self, encoder: Any, kind: Kind, max_length: int, warn_share: float = TRUNCATION_WARN_SHARE
    ) -> None:
        self.encoder, self.kind, self.max_length, self.warn_share = encoder, kind, max_length, warn_share
        self.counted = callable(getattr(encoder, "truncated", None))
        self.by_lang: dict[str, list[int]] = {}

    def use(self, encoder: Any) -> None:
        """Count with ``encoder`` from now on (one loaded later, whose tokenizer is already there)."""
        if callable(getattr(encoder, "truncated", None)):
            self.encoder = encoder

    def add(self, texts: Sequence[str], langs: Sequence[str | None]) -> dict[str, list[int]]:
        """Count one batch; returns its own ``{lang: [texts, truncated]}``."""
        batch: dict[str, list[int]] = {}
        if not self.counted:
            return batch
        cut = self.encoder.truncated(texts, kind=self.kind)
        if cut is None:  # no tokenizer to count with
            self.counted = False
            return batch
        for lang, c in zip(langs, cut, strict=True):
            row = batch.setdefault(lang or UNKNOWN_LANG, [0, 0])
            row[0] += 1
            row[1] += int(c)
        self.merge(batch)
        return batch

    def merge(self, batch: dict[str, list[int]]) -> None:
        """Add counts made earlier (a reused shard's record)."""
        for lang, (n, c) in batch.items():
            row = self.by_lang.setdefault(lang, [0, 0])
            row[0] += n
            row[1] += c

    def summary(self, what: str = "texts") -> dict[str, Any]:
        """The manifest record; warns (:class:`TruncationWarning`) for languages past the share."""
        if not self.counted:
            return {"counted": False, "max_length": self.max_length}
        by_lang = {
            lang: {"texts": n, "truncated": c, "share": round(c / n, 6) if n else 0.0}
            for lang, (n, c) in sorted(self.by_lang.items())
        }
        over = {lang: r for lang, r in by_lang.items() if r["share"] > self.warn_share}
        if over:
            import warnings

            detail = ", ".join(
                f"{lang} {r['truncated']}/{r['texts']} ({r['share']:.1%})" for lang, r in over.items()
            )
            warnings.warn(
                f"{what} cut at max length {self.max_length} tokens in more than {self.warn_share:.0%} of "
                f"a language's texts: {detail}; a cut text is embedded from its first "
                f"{self.max_length} tokens only",
                TruncationWarning,
                stacklevel=3,
            )
        return {
            "counted": True,
            "max_length": self.max_length,
            "warn_share": self.warn_share,
            "truncated": sum(r["truncated"] for r in by_lang.values()),
            "by_lang": by_lang,
        }
