"""Render side of the mutual-information analysis: headlines, Markdown tables and figures from the
plain data of :func:`~xqg.analyse.mutual_information.compute.question_data` and
:func:`~xqg.analyse.mutual_information.compute.passage_data`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import Rendered, md_table, save_figure
from xqg.analyse.mutual_information.compute import ESTIMATORS, MEAN_ROWS, PASSAGE_ESTIMATORS

QUESTION_FIGURE = "mutual_information.png"
PASSAGE_FIGURE = "mutual_information_query_passage.png"


def _langs_of(row: dict[str, float]) -> list[str]:
    return [lang for lang in row if lang not in MEAN_ROWS]


def _systems(tabs: dict[str, Any]) -> tuple[list[str], str, list[str]]:
    """(labels, the reference = first label, its languages) of estimate tables."""
    labels = list(tabs["ksg"])
    return labels, labels[0], _langs_of(tabs["ksg"][labels[0]])


def headline(tabs: dict[str, Any], log_n: float, tau: float, n: int, dataset: str) -> str:
    """Two quotable sentences from the data: the reference's KSG MI (with its shuffled control) and
    InfoNCE bound, then how far every other model moves both, with the languages where each rises."""
    labels, ref, langs = _systems(tabs)
    text = (
        f"On {n} parallel {dataset} questions (en↔X, {len(langs)} languages), {ref} reaches KSG MI "
        f"{tabs['ksg'][ref]['mean']:.2f} nats (shuffled control {tabs['ksg_shuffled'][ref]['mean']:.2f}) and "
        f"InfoNCE@τ={tau:g} {tabs['infonce'][ref]['mean']:.2f} of log N = {log_n:.2f}."
    )
    if len(labels) == 1:
        return text + " There is one model only, so no comparison yet."
    moves = "; ".join(
        f"{label} moves KSG {_move(tabs, 'ksg', label, ref, langs, first=i == 0)} and InfoNCE "
        f"{_move(tabs, 'infonce', label, ref, langs)}"
        for i, label in enumerate(labels[1:])
    )
    return f"{text} Against {ref}, {moves}."


def _move(
    tabs: dict[str, Any], key: str, label: str, ref: str, langs: Sequence[str], *, first: bool = False
) -> str:
    """``"+0.033 (7/11)"``: the mean's change and in how many languages the value rises (spelt out
    ``first``)."""
    up = sum(1 for lang in langs if tabs[key][label][lang] > tabs[key][ref][lang])
    count = f"up in {up}/{len(langs)} languages" if first else f"{up}/{len(langs)}"
    return f"{tabs[key][label]['mean'] - tabs[key][ref]['mean']:+.3f} ({count})"


def details(tabs: dict[str, Any], log_n: float, tau: float, n: int, dataset: str) -> str:
    """Every headline figure in one paragraph (the body's "Details"): the reference's estimates, and
    how every other model moves them."""
    labels, ref, langs = _systems(tabs)

    def describe(label: str) -> str:
        ksg = tabs["ksg"][label]
        lo = min(langs, key=lambda lang: ksg[lang])
        hi = max(langs, key=lambda lang: ksg[lang])
        return (
            f"KSG {ksg['mean']:.2f} nats (shuffled control {tabs['ksg_shuffled'][label]['mean']:.2f}; "
            f"{lo} {ksg[lo]:.2f} … {hi} {ksg[hi]:.2f}), "
            f"InfoNCE@τ={tau:g} {tabs['infonce'][label]['mean']:.2f} of log N = {log_n:.2f}, "
            f"CKA {tabs['cka'][label]['mean']:.3f} (debiased "
            f"{tabs['cka_debiased'][label]['mean']:.3f}), top-1 {tabs['top1'][label]['mean']:.3f}"
        )

    text = (
        f"{dataset}, {n} parallel questions, en↔X over {len(langs)} languages (mean): {ref}: {describe(ref)}"
    )
    if len(labels) == 1:
        return text + "; one model only, so no comparison yet"
    parts = []
    for label in labels[1:]:
        moves = []
        for key, name in (("ksg", "KSG"), ("infonce", "InfoNCE"), ("cka", "CKA"), ("top1", "top-1")):
            up = sum(1 for lang in langs if tabs[key][label][lang] > tabs[key][ref][lang])
            delta = tabs[key][label]["mean"] - tabs[key][ref]["mean"]
            moves.append(f"{name} {delta:+.3f} (up in {up}/{len(langs)})")
        parts.append(f"{label} vs {ref}: " + ", ".join(moves))
    return text + "; " + "; ".join(parts)


def passage_headline(tabs: dict[str, Any], *, tau: float, n: int, split: str = "test") -> str:
    """Two quotable sentences for the query–passage mode: every system's mean KSG MI next to the first
    system's, with the languages where it is higher, then the max-over-τ InfoNCE of each."""
    labels, ref, langs = _systems(tabs)
    lead = (
        f"For {n} {split} questions per language and their gold English passage ({len(langs)} "
        f"languages, en = control), mean KSG MI goes from {ref} {tabs['ksg'][ref]['mean']:.2f} nats"
    )
    if len(labels) == 1:
        return (
            f"{lead} and retrieval InfoNCE@τ={tau:g} {tabs['infonce'][ref]['mean']:.2f} nats. "
            "There is one system only, so no comparison yet."
        )
    ups = [sum(1 for lang in langs if tabs["ksg"][lb][lang] > tabs["ksg"][ref][lang]) for lb in labels[1:]]
    others = ", ".join(
        f"{label} {tabs['ksg'][label]['mean']:.2f} "
        + (f"(higher in {up}/{len(langs)} languages)" if i == 0 else f"({up}/{len(langs)})")
        for i, (label, up) in enumerate(zip(labels[1:], ups, strict=True))
    )
    best = ", ".join(f"{tabs['infonce_max'][label]['mean']:.2f}" for label in labels[1:])
    return (
        f"{lead} to {others}. Max-over-τ retrieval InfoNCE: "
        f"{tabs['infonce_max'][ref]['mean']:.2f} → {best}, in the same order."
    )


def passage_details(
    tabs: dict[str, Any], *, tau: float, log_p: float, entropy: float, n: int, split: str = "test"
) -> str:
    """Every headline figure of the query–passage mode in one paragraph (the body's "Details"): each
    estimator's language mean for the first system, then every other system's, with the number of
    languages in which it is higher."""
    labels, ref, langs = _systems(tabs)

    def move(key: str, name: str, fmt: str, note: str = "") -> str:
        text = f"{name}: {ref} {format(tabs[key][ref]['mean'], fmt)}"
        for label in labels[1:]:
            up = sum(1 for lang in langs if tabs[key][label][lang] > tabs[key][ref][lang])
            text += (
                f" → {label} {format(tabs[key][label]['mean'], fmt)} (Δ > 0 in {up}/{len(langs)} languages)"
            )
        return text + note

    shuffled = ", ".join(f"{lb} {tabs['ksg_shuffled'][lb]['mean']:.2f}" for lb in labels)
    parts = [
        move("ksg", "query–passage KSG MI (nats)", ".2f", f" (shuffled-pairs control {shuffled})"),
        move(
            "infonce",
            f"retrieval InfoNCE@τ={tau:g} (nats)",
            ".2f",
            f" (cap log P = {log_p:.2f}; valid bound = this − {log_p - entropy:.2f})",
        ),
        move("infonce_max", "max over τ", ".2f"),
        move("cka", "CKA", ".3f"),
        move("top1", "cosine top-1", ".3f"),
    ]
    text = (
        f"{n} {split} questions per language × their gold English passage, mean over {len(langs)} "
        f"languages (en = control): " + "; ".join(parts)
    )
    if len(labels) == 1:
        text += "; one system only, so no comparison yet"
    return text


def plot(
    tabs: dict[str, Any],
    path: Path,
    *,
    log_n: float,
    tau: float,
    panels: Sequence[tuple[str, str]] | None = None,
    ref_lines: dict[str, list[float]] | None = None,
) -> None:
    """Grouped bars per language (models / systems side by side), one panel per estimator.

    ``ref_lines`` draws dashed horizontal lines (e.g. log N) on the named panels; by default the
    InfoNCE panels get ``log_n``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if panels is None:
        panels = [
            ("ksg", "KSG MI (nats); × = shuffled-pairs control"),
            ("infonce", f"InfoNCE bound at τ = {tau:g} (nats); line = log N"),
            ("infonce_max", "InfoNCE bound, max over τ (nats)"),
            ("cka", "linear CKA"),
            ("cka_debiased", "debiased linear CKA"),
            ("top1", "en→X translation top-1"),
        ]
    if ref_lines is None:
        ref_lines = {"infonce": [log_n], "infonce_max": [log_n]}
    labels = list(tabs["ksg"])
    langs = _langs_of(tabs["ksg"][labels[0]])
    x = np.arange(len(langs))
    width = 0.8 / len(labels)
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.75 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (key, title) in zip(axes.flat, panels, strict=False):
        for m, label in enumerate(labels):
            offs = x - 0.4 + width * (m + 0.5)
            ax.bar(offs, [tabs[key][label][lang] for lang in langs], width, label=label)
            if key == "ksg":
                ax.scatter(
                    offs,
                    [tabs["ksg_shuffled"][label][lang] for lang in langs],
                    marker="x",
                    color="black",
                    s=14,
                    zorder=3,
                )
        for level in ref_lines.get(key, []):
            ax.axhline(level, color="grey", ls="--", lw=1)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(x, langs, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _markdown_table(tab: dict[str, dict[str, float]], fmt: str) -> str:
    labels = list(tab)
    ref = labels[0]
    head = ["lang", ref] + [x for lb in labels[1:] for x in (lb, "Δ")]
    rows = []
    for lang in tab[ref]:
        row = [f"**{lang}**" if lang in MEAN_ROWS else lang, format(tab[ref][lang], fmt)]
        for lb in labels[1:]:
            row += [format(tab[lb][lang], fmt), f"{tab[lb][lang] - tab[ref][lang]:+{fmt}}"]
        rows.append(row)
    return "\n".join(md_table(head, rows, "l" * len(head)))


def _edge_note(results: dict[str, dict[str, dict[str, Any]]], taus: Sequence[float]) -> list[str]:
    edge = [
        f"{label}/{lang}"
        for label, by_lang in results.items()
        for lang, r in by_lang.items()
        if r["infonce_best_tau"] in (min(taus), max(taus))
    ]
    if not edge:
        return []
    return [
        f"Note: the best τ lies on the edge of the grid for {len(edge)} pair(s) ({', '.join(edge[:6])}"
        f"{', …' if len(edge) > 6 else ''}); the max-over-τ bound may be higher with a wider grid.",
        "",
    ]


def render_questions(data: dict[str, Any], out: Path, *, heading: str) -> Rendered:
    """The ``--model`` mode's headline, body and figure (drawn into ``out``)."""
    s, tabs, n, log_n = data["settings"], data["tables"], data["n"], data["log_n"]
    head = headline(tabs, log_n, s["tau"], n, data["dataset"])
    plot(tabs, out / QUESTION_FIGURE, log_n=log_n, tau=s["tau"])
    body = [
        f"**Details.** {details(tabs, log_n, s['tau'], n, data['dataset'])}.",
        "",
        f"Dataset: {data['dataset']} ({data['split']}), {n} questions parallel in English and "
        f"{', '.join(data['langs'])}; "
        f"query tower only, `{s['dtype']}`, max length {s['max_length']}. log N = {log_n:.3f} nats caps the "
        f"InfoNCE bound. KSG: per-side PCA to {s['pca_dim']} whitened components, k = {s['k']}, seed "
        f"{s['seed']}; the shuffled-pairs row estimates the estimator's bias at zero MI. τ grid for the "
        f"max: {', '.join(f'{t:g}' for t in s['taus'])} (picking τ on the same data: optimistic).",
        "",
    ]
    body += _edge_note(data["per_pair"], s["taus"])
    for key, (title, fmt) in ESTIMATORS.items():
        body += [f"{heading} {title}", "", _markdown_table(tabs[key], fmt), ""]
    return Rendered(head, "\n".join(body), [QUESTION_FIGURE])


def render_passages(data: dict[str, Any], out: Path, *, heading: str) -> Rendered:
    """The ``--system`` mode's headline, body and figure (drawn into ``out``)."""
    s, tabs, results = data["settings"], data["tables"], data["per_pair"]
    tau, log_p, entropy, split = s["tau"], data["log_p"], data["gold_entropy"], data["split"]
    n = max(data["n_by_lang"].values())
    head = passage_headline(tabs, tau=tau, n=n, split=split)
    plot(
        tabs,
        out / PASSAGE_FIGURE,
        log_n=log_p,
        tau=tau,
        panels=[
            ("ksg", "question ↔ gold passage KSG MI (nats); × = shuffled control"),
            ("infonce", f"retrieval InfoNCE at τ = {tau:g} (nats); lines = log P, H(gold)"),
            ("infonce_max", "retrieval InfoNCE, max over τ (nats); lines = log P, H(gold)"),
            ("cka", "linear CKA, question ↔ gold passage"),
            ("cka_debiased", "debiased linear CKA"),
            ("top1", "cosine retrieval top-1"),
        ],
        ref_lines={"infonce": [log_p, entropy], "infonce_max": [log_p, entropy]},
    )
    norms = ", ".join(
        "{} {mean:.3f} [{min:.3f}, {max:.3f}]".format(label, **x["passage_norm"])
        for label, x in data["systems"].items()
    )
    named = ", ".join(f"`{lb}` = {x['folder']}:{x['system']}" for lb, x in data["systems"].items())
    detail = passage_details(tabs, tau=tau, log_p=log_p, entropy=entropy, n=n, split=split)
    body = [
        f"**Details.** {detail}.",
        "",
        f"Experiment systems ({named}); reference `{data['reference']}`. Each `queries-{split}` question "
        f"(≤ {n} per language; English is the "
        f"monolingual control) is paired with the vector of its gold English passage; corpus P = "
        f"{data['passages']} passages, of which the questions use {data['gold_passages']} "
        f"(H(gold) = {entropy:.3f} nats, log P = {log_p:.3f}). Passage vectors are scaled to unit length "
        f"first (lengths before, mean [min, max]: {norms}), so only their direction counts.",
        "",
        f"KSG and CKA: each question against its gold passage's vector (shared passages repeat; per-side "
        f"PCA to {s['pca_dim']} whitened components, k = {s['k']}, seed {s['seed']}); the "
        "shuffled row re-pairs questions with other questions' passages (true MI 0). Retrieval InfoNCE: "
        "log P + mean log softmax over all P distinct passages of the gold one, at fixed τ and maxed over "
        f"the τ grid {', '.join(f'{t:g}' for t in s['taus'])}. It equals the InfoNCE / Barber–Agakov "
        "bound only when the golds are uniform over the corpus; here they cover part of it, so the valid "
        f"bound is H(gold) + mean log softmax, {log_p - entropy:.3f} nats lower — the same offset for "
        "every system, so the Δs agree. `mean X≠en` averages the cross-lingual languages only.",
        "",
    ]
    best = "; ".join(
        f"{label} "
        + ", ".join(f"{t:g} × {c}" for t, c in Counter(r["infonce_best_tau"] for r in by.values()).items())
        for label, by in results.items()
    )
    body += [
        f"Best τ of the max-over-τ InfoNCE (τ × number of languages): {best}. Fusion moves every passage "
        "towards question space and so narrows each question's cosine spread; a fixed τ then under-scales "
        "the critic, which can lower the fixed-τ value while retrieval improves — compare the max over τ.",
        "",
    ]
    body += _edge_note(results, s["taus"])
    for key, (title, fmt) in PASSAGE_ESTIMATORS.items():
        body += [f"{heading} {title}", "", _markdown_table(tabs[key], fmt), ""]
    return Rendered(head, "\n".join(body), [PASSAGE_FIGURE])


def render(data: dict[str, Any], out: Path) -> Rendered:
    """Headline, body and figures of a whole analysis folder's ``data``, in whichever mode made it:
    the question mode's keys at the top level, the query–passage mode's under ``query_passage``,
    or both. Records each headline in ``data`` (``data["headline"]``, and the query–passage
    section's own under ``data["query_passage"]["headline"]``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    qp = data.get("query_passage")
    has_questions = "tables" in data
    if qp is None and not has_questions:
        raise ValueError("mutual-information data holds neither question tables nor query_passage")
    both = qp is not None and has_questions
    heading = "###" if both else "##"
    shown_qp = render_passages(qp, out, heading=heading) if qp is not None else None
    shown_qq = render_questions(data, out, heading=heading) if has_questions else None
    if shown_qp is not None:
        qp["headline"] = shown_qp.headline
    if shown_qp is not None and shown_qq is not None:
        head = f"Query–passage: {shown_qp.headline} Question–question: {shown_qq.headline}"
        body = ["## Question ↔ gold passage (experiment systems)", "", shown_qp.body_md]
        body += ["## Question ↔ translated question (query tower)", "", shown_qq.body_md]
        shown = Rendered(head, "\n".join(body), [*shown_qp.figures, *shown_qq.figures])
    else:
        shown = shown_qp or shown_qq  # type: ignore[assignment]
    data["headline"] = shown.headline
    return shown
