"""The pre-registered decision rule (docs/evaluation.md, "Pre-registered evaluation of the default run").

For the newest model of a chain against m0, per trained language x:

- (a) held-out x-pair accuracy: above 50% with its 95% interval excluding 50% (the interval's low end > 0.5);
- (b) language fidelity: the paired difference with m0 has its 95% interval above 0; where m0's share is
  above M0_CEILING, the difference not below 0 counts;
- (c) reference likelihood: the contrast gain(x) - gain(dominant) has its 95% interval above 0.

The goal is reached when (a) holds in every trained language and (b) and (c) each in at least
min(NEEDED, number of trained languages).
"""

from __future__ import annotations

NEEDED = 3  # of 4 trained languages, for (b) and (c)
M0_CEILING = 0.97  # above it, fidelity cannot rise much: not worse counts

PARTS = {
    "a": "held-out x-pair accuracy above 50%, interval excluding 50%",
    "b": "language fidelity above m0's, paired interval excluding 0",
    "c": "reference-likelihood contrast (x minus the dominant language) above 0, interval excluding 0",
}


def _low(m: dict | None) -> float | None:
    ci = (m or {}).get("ci95")
    return ci[0] if ci else None


def accuracy_holds(acc: dict | None) -> bool:
    """(a) for one language: `acc` is a share {"k", "n", "share", "ci95"}."""
    low = _low(acc)
    return low is not None and low > 0.5


def fidelity_holds(paired: dict | None, m0_share: float | None) -> bool:
    """(b) for one language: `paired` is lidr.stats.paired_shares' result against m0."""
    if not paired or paired.get("diff") is None:
        return False
    if m0_share is not None and m0_share > M0_CEILING:
        return paired["diff"] >= 0
    low = _low(paired)
    return low is not None and low > 0


def contrast_holds(contrast: dict | None) -> bool:
    """(c) for one language: `contrast` is lidr.stats.mean_interval's result."""
    low = _low(contrast)
    return low is not None and low > 0


def decide(languages: list[str], heldout_x: dict, fidelity: dict, m0_fidelity: dict, contrast: dict) -> dict:
    """Each part per language, the counts, and whether the goal is reached.

    heldout_x: {lang: {"accuracy": share}} (stages.preference's metrics["heldout"]["x"]); fidelity: {lang: paired}
    (stages.compare's vs_m0.fidelity); m0_fidelity: {lang: share} (m0's eval fidelity); contrast: {lang: mean}
    (stages.compare's vs_m0.likelihood.contrast). A language missing from a measure fails that part."""
    parts = {
        "a": {x: accuracy_holds((heldout_x.get(x) or {}).get("accuracy")) for x in languages},
        "b": {x: fidelity_holds(fidelity.get(x), (m0_fidelity.get(x) or {}).get("share")) for x in languages},
        "c": {x: contrast_holds(contrast.get(x)) for x in languages},
    }
    needed = {"a": len(languages), "b": min(NEEDED, len(languages)), "c": min(NEEDED, len(languages))}
    count = {p: sum(v.values()) for p, v in parts.items()}
    holds = {p: count[p] >= needed[p] for p in parts}
    return {
        "parts": parts,
        "count": count,
        "needed": needed,
        "holds": holds,
        "reached": bool(languages) and all(holds.values()),
    }


def sentence(model: str, decision: dict, n_languages: int) -> str:
    """One paragraph: the goal's verdict and each part's count, with the languages that pass."""
    head = "Goal reached" if decision["reached"] else "Goal not reached"
    bits = []
    for p, text in PARTS.items():
        passing = [x for x, ok in decision["parts"][p].items() if ok]
        mark = "holds" if decision["holds"][p] else "fails"
        bits.append(
            f"({p}) {text}: {len(passing)} of {n_languages} ({', '.join(passing) or 'none'}; "
            f"needed {decision['needed'][p]}): {mark}"
        )
    return f"**{head}** (the pre-registered rule, {model} against m0). " + "; ".join(bits) + "."
