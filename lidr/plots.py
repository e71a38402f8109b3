"""PNG pictures of the headline measures across iterations, for the Markdown report (readable offline and on
GitHub, where `dvc plots show`'s HTML is not).

One picture per measure: the models (m0, m1, m2, ...) on the x axis in iteration order, one line per language,
and the 95% interval as error bars where the measure has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

# a value, or (value, low, high) with its 95% interval
Point = float | tuple[float, float, float] | None

# One colour per language, the same in every picture and in `dvc plots show` (lidr/plot_templates.py): the
# paper's languages first, on matplotlib's tab10 (its grey left for the chance line), then the rest.
LANGUAGE_COLOURS = {
    "en": "#1f77b4", "es": "#ff7f0e", "de": "#2ca02c", "fr": "#d62728", "ru": "#9467bd",
    "zh": "#8c564b", "ja": "#e377c2", "th": "#bcbd22", "sw": "#17becf", "bn": "#393b79",
    "te": "#637939", "ar": "#8c6d31", "cs": "#843c39", "hi": "#aec7e8", "id": "#ffbb78",
    "it": "#98df8a", "ko": "#ff9896", "nl": "#c5b0d5", "pl": "#c49c94", "pt": "#f7b6d2",
    "sv": "#dbdb8d", "tr": "#9edae5", "uk": "#7b4173", "vi": "#5254a3",
}  # fmt: skip


def colour(lang: str) -> str:
    """The language's colour (black for a code without one)."""
    return LANGUAGE_COLOURS.get(lang, "#000000")


def _split(point: Point) -> tuple[float | None, float | None, float | None]:
    if point is None:
        return None, None, None
    if isinstance(point, tuple):
        return point
    return point, None, None


def across_iterations(
    path: str | Path,
    title: str,
    models: Sequence[str],
    values: Mapping[str, Mapping[str, Point]],
    ylabel: str,
    chance: float | None = None,
    chance_label: str = "chance",
) -> None:
    """Draw `values[model][lang]` with the models on the x axis, one line per language; save as PNG to `path`.

    A model or language without a value leaves a gap. `chance` draws a dashed horizontal line (e.g. 0.5), labelled
    `chance_label`.
    The file has no time stamp or version in it: the same values give the same bytes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = list(dict.fromkeys(lang for m in models for lang in values.get(m, {})))
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    width = 0.08 * max(len(langs) - 1, 0)
    for i, lang in enumerate(langs):
        offset = (i / max(len(langs) - 1, 1) - 0.5) * width if len(langs) > 1 else 0.0
        xs, ys, lo, hi = [], [], [], []
        for x, m in enumerate(models):
            y, low, high = _split(values.get(m, {}).get(lang))
            if y is None:
                continue
            xs.append(x + offset)
            ys.append(y)
            lo.append(y - low if low is not None else 0.0)
            hi.append(high - y if high is not None else 0.0)
        if not xs:
            continue
        errors = [lo, hi] if any(lo) or any(hi) else None
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=lang, color=colour(lang))
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label=chance_label)
    ax.set_xticks(range(len(models)), list(models))
    ax.set_xlabel("model (iteration)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if langs:
        ax.legend(fontsize=8, ncols=min(len(langs) + (chance is not None), 6), loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def training_curves(
    path: str | Path, title: str, curves: Mapping[str, Sequence[tuple[float, float]]], ylabel: str
) -> None:
    """Draw one line per iteration (`curves[model]` = [(step, value), ...]) over the optimizer steps; save as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for model, points in curves.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=model)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if any(curves.values()):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
