"""Dataset files -> plain records, split into train / validation / test."""

from __future__ import annotations

import codecs
import random
from collections import Counter
from pathlib import Path

from lepton_nlp.data.readers import (
    DataError,
    expand_path,
    read_conll,
    read_csv,
    read_fpb,
    read_hf,
    read_jsonl,
    to_iob2,
)

__all__ = [
    "DataError",
    "expand_path",
    "infer_encoding",
    "infer_format",
    "load_records",
    "load_splits",
    "read_conll",
    "read_csv",
    "read_fpb",
    "read_hf",
    "read_jsonl",
    "split_groups",
    "split_records",
    "to_iob2",
]


#: Readers that can hold each record kind (``data.format`` values), the most usual first.
FORMATS_BY_KIND = {
    "text": ("csv", "jsonl", "fpb", "hf"),
    "tokens": ("conll", "jsonl", "hf"),
    "qa": ("squad", "jsonl", "hf"),
    "relation": ("semeval", "jsonl"),
    "pair": ("parallel", "jsonl", "csv"),
}


def infer_format(path: str | Path, kind: str, configured: str) -> str:
    """The reader a data file calls for, from its suffix and first line, for records of ``kind``.

    ``.csv`` is csv, ``.jsonl``/``.ndjson`` jsonl, ``.json`` squad (QA) or jsonl, a folder
    ``hf``; a ``.txt`` is Financial PhraseBank's ``sentence@label`` when its first line ends
    so, SemEval-2010's layout when it starts with ``id<TAB>"``, else CoNLL for NER. Where
    the file does not say, or says a reader that cannot hold ``kind``, ``configured`` stays.
    """
    import re

    path = Path(path)
    allowed = FORMATS_BY_KIND.get(kind, ())
    guess = None
    suffix = path.suffix.lower()
    if path.is_dir():
        guess = "hf"
    elif suffix == ".csv":
        guess = "csv"
    elif suffix in (".jsonl", ".ndjson"):
        guess = "jsonl"
    elif suffix == ".json":
        guess = "squad" if kind == "qa" else "jsonl"
    elif suffix in (".txt", ".conll", ".iob", ".tsv") and path.is_file():
        with open(path, "rb") as stream:
            first = stream.readline(4096).decode("latin-1").strip()
        if re.match(r'\d+\t"', first):
            guess = "semeval"
        elif re.search(r"@(positive|negative|neutral)$", first):
            guess = "fpb"
        elif kind == "tokens":
            guess = "conll"
    return guess if guess in allowed else configured


def infer_encoding(path: str | Path, configured: str) -> str:
    """``utf-8`` when a file decodes as UTF-8 (most files today), else ``configured``.

    A run config names the encoding of its own training files (Financial PhraseBank's are
    latin-1); another file given for evaluation need not share it.
    """
    path = Path(path)
    if not path.is_file():
        return configured
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as stream:
            while block := stream.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return configured
    return "utf-8"


def load_records(data, path: str | Path, kind: str, reader=None) -> list[dict]:
    """Read one file with the reader that ``data.format`` names.

    Args:
        data: a :class:`lepton_nlp.config.DataConfig`.
        path: the file (or ``datasets`` folder).
        kind: ``"text"`` for text classification records, ``"tokens"`` for NER records,
            or a task's own kind (then ``reader`` reads it).
        reader: ``reader(data, path) -> records`` of a task with its own record kind.
    """
    path = expand_path(str(path))
    fmt = data.format
    if kind not in ("text", "tokens"):
        if reader is None:
            raise DataError(f"No reader for records of kind {kind!r}.")
        return reader(data, path)
    if kind == "tokens":
        if fmt == "conll":
            return read_conll(path, data.conll_tag_column, data.conll_scheme, data.encoding)
        if fmt in ("jsonl", "hf"):
            rows = (
                read_jsonl(
                    path, encoding=data.encoding, fields=(data.tokens_column, data.tags_column)
                )
                if fmt == "jsonl"
                else read_hf(path, data.hf_split)
            )
            out = []
            for i, row in enumerate(rows, start=1):
                tokens, tags = row.get(data.tokens_column), row.get(data.tags_column)
                if (
                    not isinstance(tokens, list)
                    or not isinstance(tags, list)
                    or len(tokens) != len(tags)
                ):
                    raise DataError(
                        f"{path}, record {i}: {data.tokens_column!r} and {data.tags_column!r} must be "
                        "lists of the same length."
                    )
                out.append(
                    {"tokens": [str(t) for t in tokens], "tags": to_iob2([str(t) for t in tags])}
                )
            return out
        raise DataError(f"data.format={fmt!r} cannot hold NER records; use conll, jsonl or hf.")
    if fmt == "fpb":
        encoding = data.encoding if data.encoding.lower() not in ("utf-8", "utf8") else "latin-1"
        return read_fpb(path, encoding)
    if fmt == "csv":
        return read_csv(
            path,
            data.text_column,
            data.label_column,
            data.encoding,
            data.multi_label,
            data.label_separator,
        )
    if fmt == "jsonl":
        return read_jsonl(
            path,
            data.text_column,
            data.label_column,
            data.encoding,
            data.multi_label,
            data.label_separator,
        )
    if fmt == "hf":
        rows = read_hf(path, data.hf_split)
        missing = [c for c in (data.text_column, data.label_column) if rows and c not in rows[0]]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; it has {sorted(rows[0])}.")
        return [{"text": str(r[data.text_column]), "label": r[data.label_column]} for r in rows]
    raise DataError(
        f"data.format={fmt!r} cannot hold text classification records; use csv, jsonl, fpb or hf."
    )


def _stratum(record: dict) -> str | None:
    label = record.get("label")
    if label is None or isinstance(label, list):
        return None
    return str(label)


def split_groups(
    records: list[dict], fraction: float, seed: int, group: str
) -> tuple[list[dict], list[dict]]:
    """Hold out about ``fraction`` of the records as whole groups (``record[group]``).

    Groups (SQuAD articles, documents) are shuffled with ``seed`` and held out until the
    held-out side reaches ``fraction`` of the records, so no group is on both sides.
    """
    if fraction <= 0:
        return records, []
    names = sorted({str(r.get(group)) for r in records})
    if len(names) < 2:
        raise DataError(
            f"data.split_group={group!r}: the records have {len(names)} distinct value(s); "
            "holding out whole groups needs at least two."
        )
    random.Random(seed).shuffle(names)
    sizes = Counter(str(r.get(group)) for r in records)
    target = fraction * len(records)
    held_names: set[str] = set()
    held = 0
    for name in names:
        if held >= target or len(held_names) == len(names) - 1:
            break
        held_names.add(name)
        held += sizes[name]
    keep = [r for r in records if str(r.get(group)) not in held_names]
    out = [r for r in records if str(r.get(group)) in held_names]
    return keep, out


def split_records(
    records: list[dict], fraction: float, seed: int, group: str | None = None
) -> tuple[list[dict], list[dict]]:
    """Hold out ``fraction`` of the records, stratified by label (single-label classification).

    Records of a label seen only once always stay on the kept (training) side, so no label
    appears in held-out data without training examples. With ``group``, whole groups are
    held out instead (:func:`split_groups`).
    """
    if fraction <= 0:
        return records, []
    if group:
        return split_groups(records, fraction, seed, group)
    strata = [_stratum(r) for r in records]
    counts = Counter(strata)
    rare = {i for i, s in enumerate(strata) if s is not None and counts[s] < 2}
    pool = [i for i in range(len(records)) if i not in rare]
    n_held = max(1, round(len(records) * fraction))
    pool_strata = [strata[i] for i in pool]
    if None not in pool_strata and len(set(pool_strata)) >= 2 and n_held >= len(set(pool_strata)):
        from sklearn.model_selection import train_test_split

        keep, held = train_test_split(
            pool, test_size=n_held, random_state=seed, stratify=pool_strata
        )
    else:
        order = list(pool)
        random.Random(seed).shuffle(order)
        keep, held = order[n_held:], sorted(order[:n_held])
    keep = [*keep, *sorted(rare)]
    return [records[i] for i in keep], [records[i] for i in held]


def load_splits(data, kind: str, reader=None) -> dict[str, list[dict]]:
    """Read train / validation / test as the config says, holding out fractions where asked.

    The test fraction is taken from all training records first, then the validation
    fraction (of the whole), so ``test_size=0.2, validation_size=0.16`` is FinBERT's 64/16/20.
    """
    if not data.train:
        raise DataError(
            "data.train is not set; point it at a training file (e.g. data.train=path.csv)."
        )
    train = load_records(data, data.train, kind, reader)
    splits = {"train": train, "validation": [], "test": []}
    total = len(train)
    if data.test:
        splits["test"] = load_records(data, data.test, kind, reader)
    elif data.test_size > 0:
        splits["train"], splits["test"] = split_records(
            splits["train"], data.test_size, data.split_seed, data.split_group
        )
    if data.validation:
        splits["validation"] = load_records(data, data.validation, kind, reader)
    elif data.validation_size > 0:
        fraction = data.validation_size * total / len(splits["train"])
        splits["train"], splits["validation"] = split_records(
            splits["train"], fraction, data.split_seed, data.split_group
        )
    if data.train_on_validation:
        # The final fit: settings were chosen on validation; test stays unseen.
        splits["train"], splits["validation"] = splits["train"] + splits["validation"], []
    if data.max_train_samples and data.max_train_samples < len(splits["train"]):
        # A seeded sample, not the first rows: files are often grouped by label.
        fraction = 1 - data.max_train_samples / len(splits["train"])
        splits["train"] = split_records(splits["train"], fraction, data.split_seed)[0][
            : data.max_train_samples
        ]
    return splits
