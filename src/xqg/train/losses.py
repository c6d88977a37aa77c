"""Training losses xqg adds to sentence-transformers' own.

:class:`RankDistillLoss` — MSE distillation plus *score* distillation over a fixed set of English
passages. Why: on e5-small, pulling ``student(x_X)`` toward ``teacher(x_en)`` by MSE alone raises
their cosine yet makes X-language queries rank passages *worse* past a few dozen steps
(docs/distillation.md): what MSE leaves over is small next to e5's narrow cosine range, but it
is exactly what decides a ranking. Matching the teacher's *distribution of scores over passages*
(KL, as in listwise / relevance distillation) trains what retrieval uses. The passages are the
teacher's frozen passage vectors, computed once, so a step costs one more matrix product.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class RankDistillLoss(nn.Module):
    """``MSE(student(·), teacher(en)) + w · KL(p_teacher(en) ‖ p_student(·))`` for every text column.

    ``p(q) = softmax(q · P / τ)`` over the rows of ``passages`` (unit vectors of the teacher's
    passage tower). The teacher's distribution comes from the label (its English embedding), so
    both the translation and the English sentence itself are held to the English ranking.
    """

    def __init__(self, model: Any, passages: torch.Tensor, *, weight: float = 1.0, temperature: float = 0.02):
        super().__init__()
        if passages.ndim != 2 or len(passages) < 2:
            raise ValueError("RankDistillLoss needs a (n ≥ 2, dim) matrix of passage vectors")
        self.model = model
        self.weight = float(weight)
        self.temperature = float(temperature)
        self.register_buffer("passages", passages.float(), persistent=False)
        self.mse = nn.MSELoss()

    def forward(self, sentence_features: Any, labels: torch.Tensor) -> torch.Tensor:
        embs = [self.model(f)["sentence_embedding"] for f in sentence_features]
        mse = self.mse(torch.cat(embs), labels.repeat(len(embs), 1))
        p = self.passages.to(labels.device)
        target = F.log_softmax(labels @ p.T.to(labels.dtype) / self.temperature, dim=-1)
        rank = sum(
            F.kl_div(F.log_softmax((e @ p.T.to(e.dtype)).float() / self.temperature, dim=-1),
                     target.float(), log_target=True, reduction="batchmean")
            for e in embs
        ) / len(embs)  # fmt: skip
        return mse + self.weight * rank

    @property
    def citation(self) -> str:
        return "listwise score distillation (e.g. RocketQAv2, Ren et al. 2021) over fixed passages"
