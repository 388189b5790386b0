"""Financial PhraseBank 50Agree, FinBERT's 64/16/20 protocol: test accuracy and macro-F1.

python bench/classification_fpb.py [--restarts N] [key.sub=value ...]

--restarts N trains with N seeds (training.seed, +1, ...) and keeps the run with the best
validation macro-F1; every restart's validation and test figures are recorded.
"""

from __future__ import annotations

import sys

from common import run_config_benchmark

REFERENCE = {
    "reference_finbert_accuracy": 0.86,
    "reference_finbert_macro_f1": 0.84,
    "reference_ulmfit_accuracy": 0.83,
    "reference_ulmfit_macro_f1": 0.79,
    "target_accuracy": 0.84,
    "target_macro_f1": 0.80,
}

if __name__ == "__main__":
    run_config_benchmark(
        "classification_fpb", "configs/classification_fpb.yaml", sys.argv[1:], REFERENCE
    )
