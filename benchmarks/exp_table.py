"""A Markdown table of DVC experiments: the params each changed, the pairs the gate kept for one iteration, and
the headline measures where the experiment recomputed them.

Reads every file from the experiments' git commits (`refs/exps/...`, where `dvc exp run` keeps them; metrics
are `cache: false` outputs, so they are in those commits), compared with the commit they were based on.

    python -m benchmarks.exp_table m1-baseline m1-beta-0.1 translation-penalty-1.0 --iteration m1
"""

from __future__ import annotations

import argparse
import json
import subprocess

import yaml


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def _exp_refs(name: str) -> list[str]:
    return [r for r in git("for-each-ref", "--format=%(refname)", "refs/exps").split() if r.endswith(f"/{name}")]


def ref_of(name: str) -> str:
    refs = _exp_refs(name)
    if len(refs) != 1:
        raise SystemExit(f"experiment {name!r}: {len(refs)} refs found under refs/exps")
    return refs[0]


def is_experiment(name: str) -> bool:
    return bool(_exp_refs(name))


def show(rev: str, path: str) -> str | None:
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(flat(v, f"{key}.") if isinstance(v, dict) else {key: v})
    return out


def changed_params(base: str, rev: str) -> str:
    a, b = (flat(yaml.safe_load(show(r, "params.yaml"))) for r in (base, rev))
    parts = [f"{k}={b[k]}" for k in sorted(b) if a.get(k) != b[k]]
    removed = {k for k in a if k not in b}
    for k in sorted(removed):  # a removed section is named once: ~iterations.m2
        while "." in k and all(x in removed for x in a if x.startswith(k.rsplit(".", 1)[0] + ".")):
            k = k.rsplit(".", 1)[0]
        if f"~{k}" not in parts:
            parts.append(f"~{k}")
    return ", ".join(parts) or "(none)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="+", help="experiment names (dvc exp run -n NAME)")
    ap.add_argument("--iteration", default="m1", help="whose kept pairs to count (default m1)")
    args = ap.parse_args()
    summary_keys = ("fidelity_gain", "heldout_x_acc", "ll_contrast", "mgsm", "goal_a", "goal_b", "goal_c")
    head = ["experiment", "changed params", f"{args.iteration} kept x pairs", "kept en pairs", "kept / all"]
    print("| " + " | ".join([*head, *summary_keys]) + " |")
    print("|" + "---|" * (len(head) + len(summary_keys)))
    for name in args.names:
        rev = ref_of(name)
        base = git("rev-parse", f"{rev}^").strip()
        gate = json.loads(show(rev, f"metrics/gate/{args.iteration}.json"))
        langs = sorted({lang for per in gate["kept_by_type"].values() for lang in per})
        kept = {t: "/".join(str(gate["kept_by_type"].get(t, {}).get(x, 0)) for x in langs) for t in ("x", "en")}
        total = f"{gate['total']['kept']} / {gate['total']['kept'] + gate['total']['rejected']}"
        summary = show(rev, "metrics/summary.json")
        recomputed = summary != show(base, "metrics/summary.json")
        values = json.loads(summary) if recomputed else {}
        cells = [str(values.get(k, "-")) for k in summary_keys]
        print(
            f"| {name} | {changed_params(base, rev)} | {kept['x']} ({'/'.join(langs)}) | {kept['en']} | {total} | "
            + " | ".join(cells)
            + " |"
        )


if __name__ == "__main__":
    main()
