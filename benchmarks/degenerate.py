"""The degenerate rule against good long text and real loops: false rejections and catches, old and new.

Two fixed sets under benchmarks/data/degenerate/ (described in its README):
- well_formed.jsonl: long, well-formed texts in en, es, de, fr, ru (prose, a topic phrase repeated,
  song lyrics with a chorus, code repeating lines, lists, recipes); a translated one carries its
  `source`. Every one should pass: each rejection is a false rejection.
- loops.jsonl: loops the embedded model produced in this pipeline (the same block repeated, checked
  by hand). Every one should be rejected: each is a catch.

Printed as Markdown: per rule, how many well-formed texts it rejects and how many loops it catches,
then the same per kind of text. The rules: the former absolute one (a line seen 3 times or a 4-gram
6 times, whatever the length), and lidr.gate's as params.yaml configures it, with the translations'
sources and without them.

    python -m benchmarks.degenerate
    python -m benchmarks.degenerate --show     # also each rejected text's finding
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from lidr.config import load_params
from lidr.gate import degenerate, describe, norm

DATA = Path(__file__).parent / "data" / "degenerate"
# The former rule's tokens: words split at any non-word character, CJK characters one by one.
_OLD_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W\u3040-\u30ff\u3400-\u9fff]+")


def old_rule(text: str, source: str | None) -> str | None:
    """The former rule: a non-blank line seen 3 times, or a 4-gram 6 times."""
    lines = Counter(norm(line) for line in text.splitlines() if re.search(r"\w", line))
    tokens = _OLD_TOKEN.findall(text.lower())
    grams = Counter(" ".join(tokens[i : i + 4]) for i in range(len(tokens) - 3))
    line, n_line = lines.most_common(1)[0] if lines else ("", 0)
    gram, n_gram = grams.most_common(1)[0] if grams else ("", 0)
    if n_line >= 3:
        return f"line {line[:40]!r} repeated {n_line} times"
    if n_gram >= 6:
        return f"4-gram {gram!r} repeated {n_gram} times"
    return None


def read(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def rules(params_path: str) -> dict[str, Callable[[str, str | None], str | None]]:
    rule = load_params(params_path).filter.degenerate

    def new(text: str, source: str | None) -> str | None:
        found = degenerate(text, rule, source)
        return describe(found) if found else None

    return {
        "old: line x3 or 4-gram x6": old_rule,
        "new: params.yaml": new,
        "new, sources ignored": lambda text, source: new(text, None),
    }


def pct(k: int, n: int) -> str:
    return f"{k / n:.1%}" if n else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--show", action="store_true", help="print each rejected well-formed text and missed loop")
    args = ap.parse_args()
    good, loops = read("well_formed.jsonl"), read("loops.jsonl")
    results = {}
    for name, rule in rules(args.params).items():
        results[name] = (
            {r["id"]: rule(r["text"], r.get("source")) for r in good},
            {r["id"]: rule(r["text"], None) for r in loops},
        )

    print(f"Well-formed texts: {len(good)}; loops: {len(loops)}.\n")
    print("| rule | well-formed rejected | false-rejection rate | loops caught | catch rate |")
    print("|---|---|---|---|---|")
    for name, (on_good, on_loops) in results.items():
        fr, caught = sum(v is not None for v in on_good.values()), sum(v is not None for v in on_loops.values())
        cells = [f"{fr} / {len(good)}", pct(fr, len(good)), f"{caught} / {len(loops)}", pct(caught, len(loops))]
        print(f"| {name} | " + " | ".join(cells) + " |")

    for title, rows, index in (("Well-formed rejected, by kind", good, 0), ("Loops caught, by kind", loops, 1)):
        kinds = sorted(Counter(r["kind"] for r in rows).items())
        print(f"\n{title}:\n")
        print("| rule | " + " | ".join(f"{k} ({n})" for k, n in kinds) + " |")
        print("|---|" + "---|" * len(kinds))
        for name, per_set in results.items():
            found = per_set[index]
            cells = [str(sum(found[r["id"]] is not None for r in rows if r["kind"] == k)) for k, _ in kinds]
            print(f"| {name} | " + " | ".join(cells) + " |")

    if args.show:
        for name, (on_good, on_loops) in results.items():
            print(f"\n{name}")
            for key, finding in on_good.items():
                if finding:
                    print(f"  rejects {key}: {finding}")
            for key, finding in on_loops.items():
                if not finding:
                    print(f"  misses {key}")


if __name__ == "__main__":
    main()
