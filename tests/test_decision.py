"""The pre-registered decision rule's arithmetic (lidr/decision.py)."""

from lidr.decision import decide, sentence
from lidr.stats import mean_interval, paired_shares, share

LANGS = ["es", "de", "fr", "ru"]


def acc(k, n):
    return {"accuracy": share(k, n)}


def test_each_part_reads_the_interval_not_the_point():
    heldout = {"es": acc(30, 30), "de": acc(21, 30), "fr": acc(20, 30), "ru": acc(6, 6)}
    # 21/30: Wilson low 0.52 > 0.5; 20/30: 0.49; 6/6: 0.61
    yes, no = [True] * 200, [False] * 200
    fidelity = {
        "es": paired_shares(no[:20] + yes[:180], yes[:200]),  # +20 of 200: interval above 0
        "de": paired_shares(no[:20] + yes[:180], no[:17] + yes[:183]),  # +3 of 200: interval includes 0
        "fr": paired_shares(yes[:200], yes[:200]),  # no change, m0 at 1.0 > 0.97: not worse counts
        "ru": paired_shares(yes[:200], no[:1] + yes[:199]),  # m0 at 1.0 but one lost: worse
    }
    m0 = {"es": share(180, 200), "de": share(180, 200), "fr": share(200, 200), "ru": share(200, 200)}
    contrast = {
        "es": mean_interval([0.01, 0.02, 0.03, 0.02]),
        "de": mean_interval([0.01, -0.02, 0.03, 0.0]),
        "fr": mean_interval([0.02, 0.03, 0.02, 0.04]),
    }  # ru missing: fails
    d = decide(LANGS, heldout, fidelity, m0, contrast)
    assert d["parts"]["a"] == {"es": True, "de": True, "fr": False, "ru": True}
    assert d["parts"]["b"] == {"es": True, "de": False, "fr": True, "ru": False}
    assert d["parts"]["c"] == {"es": True, "de": False, "fr": True, "ru": False}
    assert d["count"] == {"a": 3, "b": 2, "c": 2} and d["needed"] == {"a": 4, "b": 3, "c": 3}
    assert d["holds"] == {"a": False, "b": False, "c": False} and not d["reached"]
    text = sentence("general-m2", d, 4)
    assert text.startswith("**Goal not reached**") and "(a) held-out x-pair accuracy" in text
    assert "3 of 4 (es, de, ru; needed 4): fails" in text


def test_the_goal_needs_all_three_parts():
    heldout = {x: acc(30, 30) for x in LANGS}
    up = paired_shares([False] * 20 + [True] * 180, [True] * 200)
    fidelity = {x: up for x in LANGS[:3]}
    m0 = {x: share(180, 200) for x in LANGS}
    contrast = {x: mean_interval([0.01, 0.02, 0.03]) for x in LANGS[1:]}
    d = decide(LANGS, heldout, fidelity, m0, contrast)
    assert d["holds"] == {"a": True, "b": True, "c": True} and d["reached"]
    assert sentence("general-m2", d, 4).startswith("**Goal reached**")
    d = decide(LANGS, {**heldout, "fr": acc(5, 6)}, fidelity, m0, contrast)  # 5/6: interval includes 50%
    assert d["holds"]["a"] is False and not d["reached"]
    assert not decide([], {}, {}, {}, {})["reached"]
