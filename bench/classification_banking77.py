"""BANKING77 official test set: accuracy (and macro-F1).

python bench/classification_banking77.py [key.sub=value ...]
"""

from __future__ import annotations

import sys

from common import run_config_benchmark

REFERENCE = {
    "reference_bert_large_accuracy": 0.9366,
    "reference_use_convert_accuracy": 0.9336,
    "target_accuracy": 0.90,
}

if __name__ == "__main__":
    run_config_benchmark(
        "classification_banking77", "configs/classification_banking77.yaml", sys.argv[1:], REFERENCE
    )
