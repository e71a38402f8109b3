"""The great-expectations suite over the kept pairs, and the gate's counts and report.

Two in-memory batches (ephemeral GX context, pandas, no network, no files):
- `kept`: one row per kept pair (its key fields of lidr.records.KEPT_PAIR: id, lang, source_lang, pair_type;
  the prompt/chosen/rejected texts, their lengths, whether chosen equals rejected): at least one row, the
  schema, no nulls, `lang` in the configured set, `pair_type` one of the run's (lidr.records.pair_types of
  the dominant language), lengths within bounds, chosen != rejected;
- `per_language`: one row per configured language (kept, total, kept_share): at least
  `filter.suite.min_pairs_per_lang` kept pairs and a kept share of at least `min_kept_share`.

`failures()` turns failed expectations into lines that name the expectation, the language and the numbers.
"""

from __future__ import annotations

import os
from collections import Counter

from lidr.config import SuiteParams
from lidr.gate import RULE_NAMES, content, norm
from lidr.records import KEPT_PAIR, pair_types

# the kept pair's fields other than its messages, which become the text columns
PAIR_COLUMNS = tuple(f for f in KEPT_PAIR.names if f not in ("prompt", "chosen", "rejected"))
TEXT_COLUMNS = ("prompt_text", "chosen_text", "rejected_text")
KEPT_COLUMNS = (*PAIR_COLUMNS, *TEXT_COLUMNS, "chosen_chars", "rejected_chars", "same")


def kept_rows(kept: list[dict]) -> list[dict]:
    rows = []
    for p in kept:
        chosen, rejected = content(p, "chosen"), content(p, "rejected")
        rows.append(
            {
                **{c: p.get(c) for c in PAIR_COLUMNS},
                "prompt_text": p["prompt"][-1]["content"],
                "chosen_text": chosen,
                "rejected_text": rejected,
                "chosen_chars": len(chosen or ""),
                "rejected_chars": len(rejected or ""),
                "same": norm(chosen) == norm(rejected),
            }
        )
    return rows


def language_rows(kept: list[dict], rejected: list[dict], langs: tuple[str, ...]) -> list[dict]:
    k, r = Counter(p["lang"] for p in kept), Counter(p["lang"] for p in rejected)
    return [
        {
            "lang": lang,
            "kept": k[lang],
            "total": k[lang] + r[lang],
            "kept_share": round(k[lang] / (k[lang] + r[lang]), 4) if k[lang] + r[lang] else 0.0,
        }
        for lang in langs
    ]


def gate_metrics(kept: list[dict], rejected: list[dict], langs: tuple[str, ...]) -> dict:
    """Counts per language and per rule (every rule listed, zeros included, so `dvc metrics diff` lines up).
    `rejected` as lidr.gate.apply_rules returns it: each reason keeps its finding (rule and side)."""
    per_lang = language_rows(kept, rejected, langs)
    by_rule = Counter(rule for p in rejected for rule in p["rejected_by"])
    by_lang_rule = Counter((p["lang"], rule) for p in rejected for rule in p["rejected_by"])
    findings = [reason.finding for p in rejected for reason in p["reasons"]]
    by_side = Counter((x.side or "pair", x.rule) for x in findings)  # side None: a finding on the whole pair
    return {
        "kept": {row["lang"]: row["kept"] for row in per_lang},
        "rejected": {row["lang"]: row["total"] - row["kept"] for row in per_lang},
        "kept_share": {row["lang"]: row["kept_share"] for row in per_lang},
        "rules": {rule: by_rule[rule] for rule in RULE_NAMES},
        "rules_by_lang": {lang: {rule: by_lang_rule[(lang, rule)] for rule in RULE_NAMES} for lang in langs},
        "rules_by_side": {
            side: {rule: by_side[(side, rule)] for rule in RULE_NAMES} for side in ("chosen", "rejected", "pair")
        },
        "total": {"kept": len(kept), "rejected": len(rejected)},
        # per pair type, per language the pair was built for: x-prompt pairs carry the method's signal
        "kept_by_type": {
            t: {x: sum(1 for p in kept if p["pair_type"] == t and p["source_lang"] == x) for x in sources}
            for t in sorted({p["pair_type"] for p in [*kept, *rejected]})
            for sources in [sorted({p["source_lang"] for p in [*kept, *rejected]})]
        },
    }


def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx, gx.get_context(mode="ephemeral", project_config=config)


def _stable(result: dict) -> dict:
    """A GX result without what differs between identical runs (run times, random ids), so outputs stay
    byte-identical for the same inputs."""
    meta = result.get("meta", {})
    for key in ("validation_id", "validation_time", "run_id"):
        meta.pop(key, None)
    meta.get("batch_markers", {}).pop("ge_load_time", None)
    for r in result.get("results", []):
        r.get("expectation_config", {}).pop("id", None)
    return result


def run_suite(
    kept: list[dict],
    rejected: list[dict],
    langs: tuple[str, ...],
    suite: SuiteParams,
    pair_langs: tuple[str, ...] | None = None,
) -> dict:
    """Validate both batches; returns {"success", "kept": GX result, "per_language": GX result, "failures": [str]}.
    `langs` starts with the dominant language; `pair_langs` (default: `langs`) are the languages whose pairs the
    per-language checks count (the held-out block's x pairs only: the others)."""
    import pandas as pd

    gx, ctx = _context()
    E = gx.expectations
    kept_df = pd.DataFrame(kept_rows(kept), columns=list(KEPT_COLUMNS))
    lang_df = pd.DataFrame(
        language_rows(kept, rejected, pair_langs or langs), columns=["lang", "kept", "total", "kept_share"]
    )
    kept_suite = [
        E.ExpectTableRowCountToBeBetween(min_value=1),  # training needs at least one pair
        E.ExpectTableColumnsToMatchSet(column_set=list(KEPT_COLUMNS), exact_match=True),
        *[E.ExpectColumnValuesToNotBeNull(column=c) for c in (*PAIR_COLUMNS, *TEXT_COLUMNS)],
        *[E.ExpectColumnValuesToBeOfType(column=c, type_="str") for c in ("id", *TEXT_COLUMNS)],
        E.ExpectColumnValuesToBeInSet(column="lang", value_set=list(langs)),
        E.ExpectColumnValuesToBeInSet(column="source_lang", value_set=list(langs[1:])),
        E.ExpectColumnValuesToBeInSet(column="pair_type", value_set=list(pair_types(langs[0]))),
        *[
            E.ExpectColumnValuesToBeBetween(column=c, min_value=suite.min_chars, max_value=suite.max_chars)
            for c in ("chosen_chars", "rejected_chars")
        ],
        E.ExpectColumnValuesToBeInSet(column="same", value_set=[False]),
    ]
    lang_suite = [
        E.ExpectColumnValuesToBeBetween(column="kept", min_value=suite.min_pairs_per_lang),
        E.ExpectColumnValuesToBeBetween(column="kept_share", min_value=suite.min_kept_share),
    ]
    source = ctx.data_sources.add_pandas("pairs")
    results = {}
    for name, df, expectations in (("kept", kept_df, kept_suite), ("per_language", lang_df, lang_suite)):
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        s = ctx.suites.add(gx.ExpectationSuite(name=f"gate_{name}", expectations=expectations))
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=s))
        results[name] = _stable(vd.run(batch_parameters={"dataframe": df}, result_format="COMPLETE").to_json_dict())
    failed = failures(results["kept"], kept_df) + failures(results["per_language"], lang_df)
    return {"success": not failed, **results, "failures": failed}


def failures(result: dict, df) -> list[str]:
    """One line per failed expectation: its type, column and bounds, the languages and numbers."""
    lines = []
    for r in result["results"]:
        if r["success"]:
            continue
        cfg, res = r["expectation_config"], r["result"]
        kwargs = {k: v for k, v in cfg["kwargs"].items() if k not in ("batch_id", "column") and v is not None}
        what = f"{cfg['type']}({cfg['kwargs'].get('column', 'table')}; {kwargs})" if kwargs else cfg["type"]
        if r.get("exception_info", {}).get("raised_exception"):
            lines.append(f"{what}: raised {r['exception_info']['exception_message']}")
            continue
        if "unexpected_index_list" not in res:
            lines.append(f"{what}: observed {res.get('observed_value')}")
            continue
        rows = df.iloc[list(res["unexpected_index_list"])]
        column = cfg["kwargs"]["column"]
        if "total" in df.columns:  # the per-language batch: one row per language
            for _, row in rows.iterrows():
                lines.append(
                    f"{what}: language {row['lang']}: {column} {row[column]} "
                    f"({row['kept']} of {row['total']} pairs kept)"
                )
        else:
            per_lang = ", ".join(f"{lang} {n}" for lang, n in Counter(rows["lang"].fillna("null")).most_common())
            lines.append(
                f"{what}: {res['unexpected_count']} of {res['element_count']} kept pairs fail "
                f"(by language: {per_lang}; values: {res.get('partial_unexpected_list', [])[:3]})"
            )
    return lines


def report_markdown(name: str, metrics: dict, validation: dict, rejected: list[dict], examples: int = 2) -> str:
    """A page a person reads: verdict, counts per language and rule, each expectation, examples of rejections."""
    langs = list(metrics["kept"])
    verdict = "PASSED" if validation["success"] else "FAILED: nothing was handed to training"
    out = [f"# Data-quality gate: {name}", "", f"**{verdict}**", ""]
    if validation["failures"]:
        out += ["## Failed expectations", "", *[f"- {line}" for line in validation["failures"]], ""]
    out += ["## Pairs per language", "", "| lang | kept | rejected | kept share |", "|---|---|---|---|"]
    out += [
        f"| {g} | {metrics['kept'][g]} | {metrics['rejected'][g]} | {metrics['kept_share'][g]:.2f} |" for g in langs
    ]
    out += ["", "## Rejections per rule (a pair may fail several)", ""]
    out += ["| rule | all | " + " | ".join(langs) + " |", "|---|---|" + "---|" * len(langs)]
    for rule, n in metrics["rules"].items():
        out.append(f"| {rule} | {n} | " + " | ".join(str(metrics["rules_by_lang"][g][rule]) for g in langs) + " |")
    out += ["", "## Expectations", "", "| batch | expectation | column | result |", "|---|---|---|---|"]
    for batch in ("kept", "per_language"):
        for r in validation[batch]["results"]:
            cfg = r["expectation_config"]
            status = "ok" if r["success"] else "FAILED"
            out.append(f"| {batch} | {cfg['type']} | {cfg['kwargs'].get('column', '')} | {status} |")
    out += ["", f"## Examples of rejected pairs (up to {examples} per rule)", ""]
    for rule in RULE_NAMES:
        for p in [p for p in rejected if rule in p["rejected_by"]][:examples]:
            out.append(f"- `{rule}` {p['id']} ({p['lang']}, {p['pair_type']}): " + "; ".join(p["reasons"]))
            for side in ("chosen", "rejected"):
                text = norm(content(p, side))
                out.append(f"  - {side}: {text[:160]!r}{'...' if len(text) > 160 else ''}")
    return "\n".join(out) + "\n"
