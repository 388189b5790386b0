"""Question-answering records from SQuAD JSON, JSON Lines or a ``datasets`` folder.

Every reader returns flat records, one per question::

    {"id", "question", "context", "answers": {"text": [...], "answer_start": [...]}, "title"}

``title`` names the article (so ``data.split_group: title`` holds out whole articles); an
empty ``answers`` list marks a question without an answer (SQuAD 2.0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lepton_nlp.data.readers import iter_json_lines, read_hf
from lepton_nlp.errors import DataError

__all__ = ["qa_record", "read_qa_jsonl", "read_qa_records", "read_squad"]


def _answers(raw: Any, where: str) -> dict[str, list]:
    """SQuAD's list of ``{"text", "answer_start"}`` or the columnar ``{"text": [...], ...}`` form."""
    if raw is None:
        return {"text": [], "answer_start": []}
    if isinstance(raw, dict):
        texts, starts = raw.get("text"), raw.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise DataError(
                f"{where}: 'answers' must hold lists 'text' and 'answer_start' of the same "
                f"length, got {raw!r}."
            )
        pairs = list(zip(texts, starts, strict=True))
    elif isinstance(raw, list):
        pairs = []
        for answer in raw:
            if not isinstance(answer, dict) or "text" not in answer or "answer_start" not in answer:
                raise DataError(
                    f"{where}: each answer must be {{'text': ..., 'answer_start': ...}}, got {answer!r}."
                )
            pairs.append((answer["text"], answer["answer_start"]))
    else:
        raise DataError(f"{where}: 'answers' must be a list or a mapping, got {raw!r}.")
    out: dict[str, list] = {"text": [], "answer_start": []}
    for text, start in pairs:
        if not isinstance(text, str) or isinstance(start, bool) or not isinstance(start, int):
            raise DataError(
                f"{where}: answer text must be a string and answer_start an integer, "
                f"got {text!r} at {start!r}."
            )
        out["text"].append(text)
        out["answer_start"].append(start)
    return out


def qa_record(obj: dict, where: str, context: str | None = None, title: str = "") -> dict:
    """Check one question and return it as a flat record.

    Args:
        obj: the question: ``question``, ``answers`` and optionally ``id``, ``context``,
            ``title``, ``is_impossible`` (SQuAD 2.0: its answers are ignored).
        where: the file and position, for error messages.
        context: the paragraph when ``obj`` does not hold it (SQuAD JSON).
        title: the article when ``obj`` does not name it.

    Raises:
        DataError: a field is missing or of the wrong type, or an answer is not found at
            its ``answer_start`` in the context.
    """
    context = obj.get("context", context)
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: 'question' must be a non-empty string, got {question!r}.")
    if not isinstance(context, str):
        raise DataError(f"{where}: 'context' must be a string, got {context!r}.")
    answers = _answers(None if obj.get("is_impossible") else obj.get("answers"), where)
    for text, start in zip(answers["text"], answers["answer_start"], strict=True):
        found = context[start : start + len(text)] if start >= 0 else None
        if found != text:
            raise DataError(
                f"{where}: answer {text!r} is not at answer_start={start} of the context "
                f"(found {found!r}); answer_start counts characters from 0."
            )
    return {
        "id": str(obj.get("id", where)),
        "question": question,
        "context": context,
        "answers": answers,
        "title": str(obj.get("title", title)),
    }


def _load_json(path: Path, encoding: str) -> Any:
    try:
        return json.loads(path.read_text(encoding=encoding))
    except FileNotFoundError:
        raise DataError(
            f"{path} does not exist; check data.train / data.validation / data.test."
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not {encoding} text ({exc.reason}); set data.encoding."
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to read.") from None


def read_squad(path: str | Path, encoding: str = "utf-8") -> list[dict]:
    """Read the official SQuAD JSON (v1.1 or v2.0): ``data[] -> paragraphs[] -> qas[]``."""
    path = Path(path)
    tree = _load_json(path, encoding)
    articles = tree.get("data") if isinstance(tree, dict) else None
    if not isinstance(articles, list):
        raise DataError(
            f"{path}: expected SQuAD JSON, an object whose 'data' is a list of articles; "
            "for one question per line use data.format=jsonl."
        )
    records = []
    for a, article in enumerate(articles):
        if not isinstance(article, dict):
            raise DataError(
                f"{path}, article {a}: expected an object with 'title' and 'paragraphs', "
                f"got {article!r:.80}."
            )
        title = str(article.get("title", f"article {a}"))
        paragraphs = article.get("paragraphs") or []
        if not isinstance(paragraphs, list):
            raise DataError(f"{path}, article {title!r}: 'paragraphs' must be a list.")
        for p, paragraph in enumerate(paragraphs):
            where = f"{path}, article {title!r}, paragraph {p}"
            if (
                not isinstance(paragraph, dict)
                or not isinstance(paragraph.get("context"), str)
                or not isinstance(paragraph.get("qas"), list)
            ):
                raise DataError(f"{where}: a paragraph needs a string 'context' and a list 'qas'.")
            for q, qa in enumerate(paragraph["qas"]):
                if not isinstance(qa, dict):
                    raise DataError(f"{where}, question {q}: expected an object, got {qa!r:.80}.")
                records.append(qa_record(qa, f"{where}, question {q}", paragraph["context"], title))
    if not records:
        raise DataError(f"{path} holds no questions.")
    return records


def read_qa_jsonl(path: str | Path, encoding: str = "utf-8") -> list[dict]:
    """Read one question a line: ``{"question", "context", "answers"[, "id", "title"]}``."""
    records = []
    for where, obj in iter_json_lines(path, encoding):
        records.append(qa_record(obj, where))
    if not records:
        raise DataError(f"{path} holds no questions.")
    return records


def read_qa_records(data: Any, path: str | Path) -> list[dict]:
    """The question-answering reader for ``data.format`` squad, jsonl or hf.

    Args:
        data: a :class:`lepton_nlp.config.DataConfig`.
        path: the file (or ``datasets`` folder, e.g. Hugging Face ``squad`` saved to disk).
    """
    if data.format == "squad":
        return read_squad(path, data.encoding)
    if data.format == "jsonl":
        return read_qa_jsonl(path, data.encoding)
    if data.format == "hf":
        return [
            qa_record(row, f"{path}, row {i}") for i, row in enumerate(read_hf(path, data.hf_split))
        ]
    raise DataError(
        f"data.format={data.format!r} cannot hold question-answering records; use squad, jsonl or hf."
    )
