"""Relation records from SemEval-2010 Task 8 files and JSON Lines, with character spans.

A relation record is ``{"text", "head": {"start", "end"[, "type"]}, "tail": {...}, "label"}``:
``head`` is the first argument of the relation (SemEval's ``e1``), ``tail`` the second
(``e2``), spans are ``text[start:end]``, and ``label`` keeps the direction
(``Cause-Effect(e2,e1)``: the tail causes the head).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lepton_nlp.data.readers import iter_json_lines, read_text
from lepton_nlp.errors import DataError

__all__ = ["entity_span", "parse_marked", "read_relation_jsonl", "read_semeval"]

_TAG = re.compile(r"</?e[12]>")


def parse_marked(text: str, where: str = "text") -> dict:
    """``The <e1>child</e1> was put in the <e2>cradle</e2>.`` -> plain text and the two spans.

    Raises:
        DataError: the text lacks a tag pair, or has one twice or out of order.
    """
    plain, spans, opened, pos = [], {}, {}, 0
    length = 0
    for match in _TAG.finditer(text):
        piece = text[pos : match.start()]
        plain.append(piece)
        length += len(piece)
        pos = match.end()
        tag = match.group(0)
        name = tag.strip("</>")
        if tag.startswith("</"):
            if name not in opened or name in spans:
                raise DataError(f"{where}: {tag} without its opening <{name}>.")
            spans[name] = {"start": opened[name], "end": length}
        else:
            if name in opened:
                raise DataError(f"{where}: <{name}> appears twice; mark each argument once.")
            opened[name] = length
    plain.append(text[pos:])
    if set(spans) != {"e1", "e2"}:
        raise DataError(
            f"{where}: expected both <e1>...</e1> and <e2>...</e2> around the two arguments, "
            f"found {sorted(spans) or 'none'} in {text[:80]!r}."
        )
    record = {"text": "".join(plain), "head": spans["e1"], "tail": spans["e2"]}
    _check_spans(record, where)
    return record


def entity_span(value: Any, text: str, where: str) -> dict:
    """One argument as ``{"start", "end"[, "type"]}`` from ``[start, end]`` or a mapping.

    A mapping may name the type ``type`` or ``label`` (as NER predictions do); other keys
    (``text``, ``score``) are dropped.

    Raises:
        DataError: not a span, or one outside the text.
    """
    if isinstance(value, dict):
        start, end = value.get("start"), value.get("end")
        kind = value.get("type", value.get("label"))
    elif isinstance(value, list | tuple) and len(value) in (2, 3):
        start, end, kind = value[0], value[1], value[2] if len(value) == 3 else None
    else:
        raise DataError(
            f"{where}: an argument must be [start, end] or {{'start', 'end', 'type'}} "
            f"(character offsets), got {value!r}."
        )
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool):
        raise DataError(f"{where}: start and end must be integers, got {value!r}.")
    if not 0 <= start < end <= len(text):
        raise DataError(
            f"{where}: span [{start}, {end}) is not inside the text (length {len(text)}); "
            "offsets count characters, end exclusive."
        )
    span: dict[str, Any] = {"start": start, "end": end}
    if kind is not None and str(kind).strip():
        span["type"] = str(kind).strip()
    return span


def _check_spans(record: dict, where: str) -> None:
    head, tail = record["head"], record["tail"]
    if head["start"] < tail["end"] and tail["start"] < head["end"]:
        raise DataError(
            f"{where}: the head [{head['start']}, {head['end']}) and tail "
            f"[{tail['start']}, {tail['end']}) overlap; the two arguments must be disjoint."
        )
    for name in ("head", "tail"):
        span = record[name]
        if not record["text"][span["start"] : span["end"]].strip():
            raise DataError(f"{where}: the {name} span covers only spaces.")


def read_semeval(path: str | Path, encoding: str = "utf-8") -> list[dict]:
    """Read SemEval-2010 Task 8 (``TRAIN_FILE.TXT``, ``TEST_FILE_FULL.TXT``) into relation records.

    Each example is an ``<id><TAB>"sentence with <e1>..</e1> and <e2>..</e2>"`` line, the
    label line (absent in an unlabelled test file), an optional ``Comment:`` line and a
    blank line. Records keep the example's ``id``.
    """
    content = read_text(path, encoding)
    records: list[dict] = []
    current: dict | None = None
    for line_no, line in enumerate(content.splitlines(), start=1):
        line = line.strip()
        where = f"{path}, line {line_no}"
        if not line or line.startswith("Comment"):
            continue
        number, tab, sentence = line.partition("\t")
        if tab and number.strip().isdigit():
            sentence = sentence.strip()
            if len(sentence) >= 2 and sentence[0] == sentence[-1] == '"':
                sentence = sentence[1:-1]
            current = {"id": number.strip(), **parse_marked(sentence, where)}
            records.append(current)
        elif current is not None and "label" not in current:
            current["label"] = line
        else:
            raise DataError(
                f"{where}: expected '<id><TAB>\"sentence\"', a label or a Comment line, "
                f"got {line[:80]!r}. Is this a SemEval-2010 Task 8 file (data.format=semeval)?"
            )
    if not records:
        raise DataError(f"{path} holds no SemEval-2010 Task 8 examples.")
    return records


def read_relation_jsonl(
    path: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    encoding: str = "utf-8",
) -> list[dict]:
    """Read JSON Lines relation records: ``{"text", "head", "tail", "label"}`` per line.

    ``head`` and ``tail`` are character spans, ``[start, end]`` or ``{"start", "end",
    "type"}``; the label may be absent (data to predict). Objects without ``head``/``tail``
    may instead mark the arguments in the text with ``<e1>..</e1>`` and ``<e2>..</e2>``.
    """
    records = []
    for where, obj in iter_json_lines(path, encoding):
        if not isinstance(obj.get(text_column), str):
            raise DataError(
                f"{where}: expected an object with a string {text_column!r} field "
                "(set data.text_column otherwise)."
            )
        text = obj[text_column]
        if "head" in obj or "tail" in obj:
            if "head" not in obj or "tail" not in obj:
                raise DataError(f"{where}: give both 'head' and 'tail' spans.")
            record = {
                "text": text,
                "head": entity_span(obj["head"], text, f"{where}, head"),
                "tail": entity_span(obj["tail"], text, f"{where}, tail"),
            }
            _check_spans(record, where)
        else:
            record = parse_marked(text, where)
        if label_column is not None and label_column in obj:
            label = obj[label_column]
            if not isinstance(label, str) or not label.strip():
                raise DataError(f"{where}: {label_column!r} must be a non-empty string.")
            record["label"] = label.strip()
        if "id" in obj:
            record["id"] = str(obj["id"])
        records.append(record)
    if not records:
        raise DataError(f"{path} holds no records.")
    return records
