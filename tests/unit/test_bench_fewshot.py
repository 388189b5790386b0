"""bench/fewshot.py's summary table: the figures docs/prompt-learning.md shows come from the
cells, paired with LoRA on the same seeds, and cells that did not run say so."""

from __future__ import annotations

from bench.fewshot import markdown_table, summarise


def _cell(method: str, shots: int, seed: int, accuracy: float, dataset: str = "banking77"):
    return {
        "dataset": dataset,
        "method": method,
        "shots": shots,
        "seed": seed,
        "accuracy": accuracy,
        "macro_f1": accuracy,
        "accuracy_llm_subset": accuracy,
    }


def test_the_docs_table_pairs_methods_with_lora_and_names_what_did_not_run():
    cells = [
        _cell("lora", 10, 0, 0.80),
        _cell("lora", 10, 1, 0.90),
        _cell("setfit", 10, 0, 0.86),  # one seed: against LoRA's seed 0 only (+6.0)
        _cell("soft-prompt", 10, 0, 0.70),
        _cell("soft-prompt", 10, 1, 0.80),
        _cell("label-similarity", 0, 0, 0.65),
    ]
    table = summarise(cells)["table"]
    lines = markdown_table(table).splitlines()
    assert lines[0].startswith("| dataset, shots | zero-shot (LLM) |")
    (row,) = [line for line in lines if line.startswith("| BANKING77, 10 per class")]
    columns = [c.strip() for c in row.strip("|").split("|")]
    assert columns[1] == "not run"  # zero-shot never ran
    assert columns[2] == "0.650, -20.0"  # against LoRA's mean over its seeds
    assert columns[3] == "not run"  # in-context
    assert columns[4] == "0.860 (1), +6.0"
    assert columns[5] == "0.750 +- 0.071 (2), -10.0"
    assert columns[6] == "0.850 +- 0.071 (2)"
    assert not any("Financial PhraseBank" in line for line in lines)  # no FPB cell ran
