"""Model classes the tasks build on: the R-BERT relation head and the encoder-decoder warm start.

A task adapter (:mod:`lepton_nlp.tasks`) turns records into inputs and outputs into
predictions; the networks it loads for that live here.
"""

from __future__ import annotations

__all__: list[str] = []
