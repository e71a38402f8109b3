"""Prompt sources, prompt sampling, parallel prompts and MGSM-layout evaluation sets.

A source is a local .json/.jsonl file (Alpagasus `{"id", "instruction"}`, GSM8K `{"question",
"answer"}`, or any records with a text field) or an HF dataset id. Local files are parsed here so
that a broken line is reported with its file and line number.
"""

from __future__ import annotations

import csv
import hashlib
import random
from pathlib import Path

from lidr.config import PromptSource
from lidr.errors import DataError
from lidr.io import read_json_or_jsonl
from lidr.records import ALPACA_INSTRUCTION, PARALLEL_PROMPT, REFERENCE_OUTPUT, read_records

TEXT_FIELDS = ("instruction", "question", "prompt")


def _is_local(path: str) -> bool:
    return Path(path).suffix in (".json", ".jsonl") or Path(path).exists()


def _load_rows(src: PromptSource) -> tuple[list[dict], str]:
    if _is_local(src.path):
        return read_json_or_jsonl(src.path), src.path
    import datasets  # hub ids only

    try:
        ds = datasets.load_dataset(src.path, src.config, split=src.split)
    except Exception as e:  # datasets raises many types; say which source failed and why
        raise DataError(f"prompt source {src.path!r} (split {src.split!r}) could not be loaded: {e}") from e
    return [dict(r) for r in ds], f"{src.path}[{src.split}]"


def _digest(parts: list[str]) -> str:
    """A hex digest of `parts` in order (each length-prefixed, so no two lists share one)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def load_source(src: PromptSource) -> list[dict]:
    """Records `{"id", "kind", "text", "source"}` of one prompt source, in file order.

    An Alpagasus/Alpaca record with a non-empty `input` becomes `instruction + "\\n" + input`. A record without an
    id gets `<file stem>-<hash>-<index>`, the hash taken over the source's texts: two id-less sources with the same
    file name get different ids, and the same file gets the same ids wherever it lies.
    """
    rows, where = _load_rows(src)
    if not rows:
        raise DataError(f"{where}: the prompt source is empty")
    field = src.field or next((f for f in TEXT_FIELDS if f in rows[0]), None)
    if field is None:
        raise DataError(
            f"{where}: no text field; expected one of {TEXT_FIELDS}, or set the source's `field` in params.yaml"
        )
    id_field = src.id_field or ("id" if "id" in rows[0] else None)
    texts = []
    for i, row in enumerate(rows):
        line = f"{where}: record {i + 1}"
        text = row.get(field)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{line}: field {field!r} is missing or empty")
        if id_field and id_field not in row:
            raise DataError(f"{line}: field {id_field!r} is missing")
        text = text.strip()
        extra = row.get("input") if field == "instruction" else None
        if extra is not None and not isinstance(extra, str):
            raise DataError(f"{line}: field 'input' is not a string")
        if extra and extra.strip():
            text = f"{text}\n{extra.strip()}"
        texts.append(text)
    if not id_field:
        stem = Path(src.path).stem.replace("/", "_")
        prefix = f"{stem}-{_digest(texts)[:8]}"
    out, seen = [], set()
    for i, (row, text) in enumerate(zip(rows, texts, strict=True)):
        rid = str(row[id_field]) if id_field else f"{prefix}-{i}"
        if rid in seen:
            raise DataError(f"{where}: record {i + 1}: duplicate id {rid!r}")
        seen.add(rid)
        out.append({"id": rid, "kind": src.kind, "text": text, "source": src.path})
    return out


def sample_block(records: list[dict], n: int, round_: int, seed: int, where: str) -> list[dict]:
    """Block `round_` of a seeded permutation: blocks of different rounds never share a prompt.

    The permutation depends on `seed` and the records' texts, in order, only: not on where the source lies or what
    it is called (an id-less source's ids carry its file name), so a copy of a file samples the same prompts."""
    order = list(range(len(records)))
    random.Random(f"{seed}:{_digest([r['text'] for r in records])}").shuffle(order)
    lo, hi = round_ * n, (round_ + 1) * n
    if hi > len(records):
        raise DataError(
            f"{where}: round {round_} needs prompts {lo}..{hi - 1} of a seeded permutation, "
            f"but the source has only {len(records)}; lower its n or add prompts"
        )
    return [records[i] for i in order[lo:hi]]


def sample_prompts(sources: tuple[PromptSource, ...], round_: int, seed: int) -> list[dict]:
    out, seen = [], {}
    for src in sources:
        for rec in sample_block(load_source(src), src.n, round_, seed, src.path):
            if rec["id"] in seen:
                raise DataError(f"{src.path}: id {rec['id']!r} is also used by {seen[rec['id']]}")
            seen[rec["id"]] = src.path
            out.append(rec)
    return out


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def heldout_prompts(heldout: tuple[PromptSource, ...], training: tuple[PromptSource, ...], seed: int) -> list[dict]:
    """The held-out block: block 0 of each held-out source, sharing no id or text with any training source."""
    if not heldout:
        raise DataError("chains.heldout.sources: no held-out source; list at least one (see params.yaml)")
    block = sample_prompts(heldout, 0, seed)
    trained: dict[str, str] = {}
    for src in training:
        for rec in load_source(src):
            trained[rec["id"]] = src.path
            trained[_norm(rec["text"])] = src.path
    for rec in block:
        for key in (rec["id"], _norm(rec["text"])):
            if key in trained:
                raise DataError(
                    f"{rec['source']}: held-out prompt {rec['id']!r} is also in the training source "
                    f"{trained[key]} (same id or text); the held-out block must be disjoint from every round"
                )
    return block


def load_parallel(path: str) -> dict[tuple[str, str], str]:
    """Given translations (records.PARALLEL_PROMPT): (id, lang) -> text."""
    table = {}
    for i, rec in enumerate(read_records(path, PARALLEL_PROMPT), 1):
        if not rec["text"].strip():
            raise DataError(f"{path}: record {i}: field 'text' is empty")
        table[(str(rec["id"]), rec["lang"])] = rec["text"].strip()
    return table


# ---------------------------------------------------------------------------------------------
# MGSM layout: mgsm_<lang>.tsv, `question<TAB>answer`, no header, no quoting


def read_mgsm_tsv(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row:
                continue
            if len(row) != 2:
                raise DataError(
                    f"{path}:{lineno}: expected 2 tab-separated columns (question, answer), got {len(row)}"
                )
            question, answer = row[0].strip(), row[1].strip()
            if not question or not answer:
                raise DataError(f"{path}:{lineno}: empty question or answer")
            rows.append({"question": question, "answer": answer})
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def load_mgsm(path: str, lang: str, limit: int = 0) -> list[dict]:
    """Records `{"id", "lang", "question", "answer"}` for one language, from a folder or the hub."""
    folder = Path(path)
    if folder.is_dir():
        rows = read_mgsm_tsv(folder / f"mgsm_{lang}.tsv")
    else:
        import datasets

        try:
            ds = datasets.load_dataset(path, lang, split="test")
        except Exception as e:
            raise DataError(
                f"eval.mgsm.path: {path!r} is not a folder and could not be loaded from the hub: {e}"
            ) from e
        rows = [{"question": r["question"], "answer": str(r["answer_number"])} for r in ds]
    if limit:
        rows = rows[:limit]
    return [{"id": f"mgsm-{i:04d}", "lang": lang, **r} for i, r in enumerate(rows)]


# ---------------------------------------------------------------------------------------------
# X-AlpacaEval layout: a JSON list of {"id", "dataset", "instruction"} per language; reference outputs in the
# alpaca_eval layout: a JSON list of {"instruction", "output", "generator", "dataset"}


def sample_ids(ids: list[str], limit: int, seed: int) -> set[str]:
    """The first `limit` of a seeded order of `ids`: the order depends on the seed and the set of ids only, so
    parallel files (the same ids in every language) give the same items, and a smaller limit a subset."""
    order = sorted(ids)
    random.Random(f"{seed}:{_digest(order)}").shuffle(order)
    return set(order[:limit])


def load_alpaca(pattern: str, lang: str, limit: int = 0, seed: int = 0) -> list[dict]:
    """Records `{"id", "lang", "dataset", "instruction"}` of one language's instruction file: all of them, or the
    first `limit` ids of a seeded order (`sample_ids`), in file order."""
    path = pattern.format(lang=lang)
    rows = read_records(path, ALPACA_INSTRUCTION)
    out, seen = [], set()
    for i, row in enumerate(rows):
        rid, text = str(row["id"]), row["instruction"]
        if not text.strip():
            raise DataError(f"{path}: item {i}: field 'instruction' is empty")
        if rid in seen:
            raise DataError(f"{path}: item {i}: duplicate id {rid!r}")
        seen.add(rid)
        out.append({"id": rid, "lang": lang, "dataset": row.get("dataset", ""), "instruction": text.strip()})
    if not out:
        raise DataError(f"{path}: no instructions")
    if not limit:
        return out
    if limit > len(out):
        raise DataError(f"{path}: {limit} instructions asked for (limit), but the file has {len(out)}")
    chosen = sample_ids([r["id"] for r in out], limit, seed)
    return [r for r in out if r["id"] in chosen]


def load_references(pattern: str, lang: str) -> dict[str, str]:
    """Reference outputs of one language, keyed by `id` where the rows carry one and by the instruction text
    (alpaca_eval's join) always: {key: output}."""
    path = pattern.format(lang=lang)
    table: dict[str, str] = {}
    for i, row in enumerate(read_records(path, REFERENCE_OUTPUT)):
        if not row["output"].strip():
            raise DataError(f"{path}: item {i}: field 'output' is empty")
        if "id" in row:
            table[f"id:{row['id']}"] = row["output"]
        table[f"instruction:{row['instruction'].strip()}"] = row["output"]
    return table


def reference_for(table: dict[str, str], rid: str, instruction: str) -> str | None:
    """The reference output of an item, by id, else by instruction text; None when there is none."""
    return table.get(f"id:{rid}", table.get(f"instruction:{instruction.strip()}"))


def load_reference_outputs(pattern: str, lang: str) -> dict[str, dict]:
    """instruction -> `{"output", "generator"}` (alpaca_eval joins outputs on the instruction text)."""
    path = pattern.format(lang=lang)
    table = {}
    for row in read_records(path, REFERENCE_OUTPUT):
        table[row["instruction"].strip()] = {"output": row["output"], "generator": row.get("generator", path)}
    return table
