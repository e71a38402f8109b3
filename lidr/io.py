"""Reading and writing the pipeline's files: UTF-8 JSONL records, written atomically.

What each file between stages holds, and its checks: lidr/records.py.

Every output is written to a temporary file beside its final path and renamed at the end, so a
crash, Ctrl-C or kill never leaves a partial file where DVC would record it as done.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lidr.errors import DataError


def _object(record: Any, where: str) -> dict:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(`file:line`, value) of every non-blank line of a JSONL file; a broken line raises naming file and line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{lineno}", json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None


def iter_json_or_jsonl(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(where, value) of every line of a .jsonl file, or of every item of a .json file holding a list."""
    path = Path(path)
    if path.suffix != ".json":
        yield from iter_jsonl(path)
        return
    if not path.exists():
        raise DataError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    for i, item in enumerate(data):
        yield f"{path}: item {i}", item


def read_jsonl(path: str | Path) -> list[dict]:
    """All records (JSON objects) of a JSONL file; a broken line raises naming file and line.
    Files between stages are read with lidr.records.read_records, which also checks their fields."""
    return [_object(r, where) for where, r in iter_jsonl(path)]


def read_json_or_jsonl(path: str | Path) -> list[dict]:
    """Records of a .jsonl file, or of a .json file holding a list of objects."""
    return [_object(r, where) for where, r in iter_json_or_jsonl(path)]


def dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp if directory else tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> int:
    n = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(dumps(record) + "\n")
            n += 1
    return n


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
