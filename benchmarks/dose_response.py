"""The dose-response table: the pre-registered decision rule (lidr.decision) for one iteration against m0, per
DVC experiment of a training-strength sweep, with the minutes each experiment took.

Every file is read from the experiments' git commits (`refs/exps/...`; metrics are `cache: false` outputs, so
they are in those commits) or, for a reference run (`HEAD`, or a commit), from the commit itself. Minutes: given
on the command line as NAME=MINUTES (measured around `dvc queue start`; see docs/dvc.md, "Dose-response").

The iteration judged must be evaluated. The default evaluates m0 and general-m2 only, so a one-iteration point
on general-m1 lists it in the evaluation too, and its reference row is a commit whose run evaluated general-m1
(770af47, the last reference that did; its general-m1 is the same model):

    dvc exp run --queue -n epochs-4 -S train.num_train_epochs=4 \
        -S 'eval.models=[m0,general-m1,general-m2]' -S '+eval.iterations.general-m1=m0' \
        -S 'eval.iterations.general-m2=general-m1' compare@general-m1 preference@general-m1
    dvc queue start
    python -m benchmarks.dose_response 770af47 epochs-4 --iteration general-m1 --minutes epochs-4=16.2
"""

from __future__ import annotations

import argparse
import json

from benchmarks.exp_table import changed_params, git, is_experiment, ref_of, show
from lidr.decision import decide


def fmt(m: dict | None, key: str = "mean") -> str:
    if not m or m.get(key) is None or not m.get("ci95"):
        return "-"
    lo, hi = m["ci95"]
    return f"{m[key]:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def row(name: str, iteration: str, minutes: dict[str, str]) -> list[str]:
    experiment = is_experiment(name)  # else a commit of a reference run: HEAD, or one that evaluated the iteration
    rev = ref_of(name) if experiment else name
    base = git("rev-parse", f"{rev}^").strip() if experiment else rev

    def read(path: str) -> dict:
        text = show(rev, path)
        if text is None:
            raise SystemExit(f"{name}: {path} is not in {rev}; did it evaluate {iteration} (eval.models)?")
        return json.loads(text)

    pref = read(f"metrics/preference/{iteration}.json")["heldout"].get("x", {})
    vs_m0 = read(f"metrics/compare/{iteration}.json")["vs_m0"]
    m0 = read("metrics/eval/m0.json")["fidelity"]
    langs = [x for x in pref if x != "all"]
    contrast = vs_m0["likelihood"]["contrast"]
    d = decide(langs, pref, vs_m0["fidelity"], m0, contrast)
    acc = ", ".join(f"{x} {pref[x]['accuracy']['k']}/{pref[x]['accuracy']['n']}" for x in langs)
    fid = ", ".join(f"{x} {fmt(vs_m0['fidelity'].get(x), 'diff')}" for x in langs)
    con = ", ".join(f"{x} {fmt(contrast.get(x))}" for x in langs)
    changed = changed_params(base, rev) if experiment else "reference run"
    counts = f"{d['count']['a']}/{d['count']['b']}/{d['count']['c']}"
    return [name, changed, acc, fid, con, counts, "yes" if d["reached"] else "no", minutes.get(name, "-")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "names", nargs="+", help="reference runs (HEAD, or a commit) and experiment names (dvc exp run -n NAME)"
    )
    ap.add_argument("--iteration", default="general-m1", help="the iteration judged against m0")
    ap.add_argument("--minutes", nargs="*", default=[], help="NAME=MINUTES, measured")
    args = ap.parse_args()
    minutes = dict(m.split("=", 1) for m in args.minutes)
    head = [
        "experiment",
        "changed params",
        "(a) held-out x-pair accuracy",
        "(b) fidelity vs m0",
        "(c) likelihood contrast x - en",
        "a/b/c passing",
        "goal",
        "minutes",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in args.names:
        print("| " + " | ".join(row(name, args.iteration, minutes)) + " |")


if __name__ == "__main__":
    main()
