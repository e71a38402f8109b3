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
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=lang)
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
