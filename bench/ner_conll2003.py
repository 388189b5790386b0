"""CoNLL-2003 English NER, official splits: entity-level F1 on testb (seqeval, conlleval rules).

python bench/ner_conll2003.py [key.sub=value ...]
"""

from __future__ import annotations

import sys

from common import run_config_benchmark

REFERENCE = {"reference_bert_base_f1": 0.924, "target_f1": 0.85}

if __name__ == "__main__":
    run_config_benchmark("ner_conll2003", "configs/ner_conll2003.yaml", sys.argv[1:], REFERENCE)
