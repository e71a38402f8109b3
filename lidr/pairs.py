"""Preference pairs from the model's own responses and self-translations (docs/method.md, step 5).

For a prompt id and a non-dominant language x (the dominant language d is `en` by default):

| pair_type       | lang | prompt          | chosen                          | rejected                       |
|-----------------|------|-----------------|---------------------------------|--------------------------------|
| x               | x    | prompt in x     | d response translated to x      | the model's own response in x  |
| d (`en`)        | d    | prompt in d     | the model's own d response      | the x response translated to d |
| x_untranslated  | x    | prompt in x     | d response, untranslated        | the model's own response in x  |

`x_untranslated` replaces `x` when the English prompt itself asks for a translation. The pair in the
dominant language has that language's code as its type (lidr.records.pair_types). Records are joined
on id with polars; a response or translation missing for an id raises.

The pair record (TRL conversational format plus provenance) is lidr.records.PAIR, and every pair is built by
lidr.records.make_pair, which checks it. A failed translation
leaves that side's content null and `translation_ok` false. `*_source` is the text a translated side
was translated from (null for an untranslated side), and `*_source_finish_reason` how its generation
ended: the gate measures length ratios and truncation on them.
"""

from __future__ import annotations

import polars as pl

from lidr.errors import JoinError
from lidr.prompts import asks_for_translation
from lidr.records import make_pair


def _require(df: pl.DataFrame, column: str, what: str) -> None:
    missing = df.filter(pl.col(column).is_null())
    if missing.height:
        ids = ", ".join(missing["id"].head(5).to_list())
        raise JoinError(f"{what} missing for id(s) {ids} ({missing.height} in all)")


def build_pairs(
    prompts_en: list[dict],
    responses: list[dict],
    translations: list[dict],
    dominant: str,
    others: tuple[str, ...],
    dominant_pairs: bool = True,
) -> list[dict]:
    """The pairs of every prompt and x; with `dominant_pairs` false, the x pairs only (no x->dominant
    translations are needed)."""
    resp = pl.DataFrame(
        {
            "id": [r["id"] for r in responses],
            "lang": [r["lang"] for r in responses],
            "kind": [r["kind"] for r in responses],
            "row": list(range(len(responses))),
            "response": [r["response"] for r in responses],
            "finish_reason": [r["finish_reason"] for r in responses],
        }
    )
    tr = pl.DataFrame(
        {
            "id": [t["id"] for t in translations],
            "source_lang": [t["source_lang"] for t in translations],
            "target_lang": [t["target_lang"] for t in translations],
            "text": [t["text"] for t in translations],
            "ok": [t["ok"] for t in translations],
            "tr_finish": [t["finish_reason"] for t in translations],
        },
        schema_overrides={"text": pl.String},
    )
    en_prompts = {p["id"]: p["text"] for p in prompts_en}
    en = resp.filter(pl.col("lang") == dominant).select(
        "id",
        pl.col("row").alias("en_row"),
        pl.col("response").alias("en_response"),
        pl.col("finish_reason").alias("en_finish"),
    )
    pairs = []
    for x in others:
        rx = resp.filter(pl.col("lang") == x)
        to_x = tr.filter((pl.col("source_lang") == dominant) & (pl.col("target_lang") == x)).select(
            "id",
            pl.col("text").alias("en_in_x"),
            pl.col("ok").alias("to_x_ok"),
            pl.col("tr_finish").alias("to_x_finish"),
        )
        to_en = tr.filter((pl.col("source_lang") == x) & (pl.col("target_lang") == dominant)).select(
            "id",
            pl.col("text").alias("x_in_en"),
            pl.col("ok").alias("to_en_ok"),
            pl.col("tr_finish").alias("to_en_finish"),
        )
        joined = rx.join(en, on="id", how="left", validate="1:1")
        _require(joined, "en_row", f"{dominant} response (needed by {x} responses)")
        joined = joined.join(to_x, on="id", how="left", validate="1:1")
        _require(joined, "to_x_ok", f"{dominant}->{x} translation of the {dominant} response")
        if dominant_pairs:
            joined = joined.join(to_en, on="id", how="left", validate="1:1")
            _require(joined, "to_en_ok", f"{x}->{dominant} translation of the {x} response")
        for row in joined.sort("row").iter_rows(named=True):
            x_messages = responses[row["row"]]["messages"]
            en_messages = responses[row["en_row"]]["messages"]
            untranslated = asks_for_translation(en_prompts.get(row["id"], ""))
            common = {"id": row["id"], "source_lang": x, "kind": row["kind"], "asks_translation": untranslated}
            if untranslated:
                x_pair = make_pair(
                    **common,
                    lang=x,
                    pair_type="x_untranslated",
                    prompt=x_messages,
                    chosen=row["en_response"],
                    rejected=row["response"],
                    chosen_origin=f"{dominant} response",
                    rejected_origin=f"{x} response",
                    chosen_finish_reason=row["en_finish"],
                    rejected_finish_reason=row["finish_reason"],
                    translation_ok=True,
                )
            else:
                x_pair = make_pair(
                    **common,
                    lang=x,
                    pair_type="x",
                    prompt=x_messages,
                    chosen=row["en_in_x"],
                    rejected=row["response"],
                    chosen_origin=f"{dominant} response translated to {x}",
                    rejected_origin=f"{x} response",
                    chosen_finish_reason=row["to_x_finish"],
                    rejected_finish_reason=row["finish_reason"],
                    translation_ok=bool(row["to_x_ok"]),
                    chosen_source=row["en_response"],
                    chosen_source_finish_reason=row["en_finish"],
                )
            if not dominant_pairs:
                pairs.append(x_pair)
                continue
            en_pair = make_pair(
                **common,
                lang=dominant,
                pair_type=dominant,
                prompt=en_messages,
                chosen=row["en_response"],
                rejected=row["x_in_en"],
                chosen_origin=f"{dominant} response",
                rejected_origin=f"{x} response translated to {dominant}",
                chosen_finish_reason=row["en_finish"],
                rejected_finish_reason=row["to_en_finish"],
                translation_ok=bool(row["to_en_ok"]),
                rejected_source=row["response"],
                rejected_source_finish_reason=row["finish_reason"],
            )
            pairs += [x_pair, en_pair]
    return pairs


def translation_jobs(
    responses: list[dict], dominant: str, others: tuple[str, ...], dominant_pairs: bool = True
) -> list[dict]:
    """Which responses to translate: every dominant response into every x, and (for the dominant-language
    pairs) every x response into dominant."""
    jobs = []
    for r in responses:
        if r["lang"] == dominant:
            jobs += [
                {"id": r["id"], "source_lang": dominant, "target_lang": x, "source_text": r["response"]}
                for x in others
            ]
        elif r["lang"] in others and dominant_pairs:
            jobs.append(
                {"id": r["id"], "source_lang": r["lang"], "target_lang": dominant, "source_text": r["response"]}
            )
    return jobs
