"""Label log-likelihoods under a causal LM: each label's words scored after a prompt, batched."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lepton_nlp.training.prompts.templates import Verbalizer

__all__ = ["LabelScorer", "calibrate", "word_token_ids"]


def word_token_ids(tokenizer: Any, word: str) -> list[int]:
    """The tokens of ``word`` as it continues a prompt: after a space, no special tokens."""
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"The verbalizer word {word!r} has no tokens.")
    return list(ids)


class LabelScorer:
    """Scores ``log p(word | prompt)`` for every word of every label, many prompts at once.

    Each batch runs the prompts once (left-padded, keeping the key/value cache), then all
    candidate words of all labels together on top of that cache: a prompt is encoded once
    however many labels there are. A label's score is the log of its words' mean
    probability (a verbalizer may give a label several words).

    Args:
        model: a loaded causal LM (``AutoModelForCausalLM``), or a name or folder
            resolved like a run config's ``model.name``.
        tokenizer: the model's tokenizer (loaded from ``model`` when None).
        batch_rows: prompt x candidate rows per forward pass (bounds memory: each row
            holds ``max word tokens x vocabulary`` log-probabilities).
        max_prompt_tokens: longer prompts keep their last tokens (the text's end and the
            answer prefix matter most).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        batch_rows: int = 96,
        max_prompt_tokens: int = 1024,
    ):
        if isinstance(model, str):
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from lepton_nlp.hub import resolve_model

            path = resolve_model(model)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        if tokenizer is None:
            raise ValueError("Pass the tokenizer of a loaded model.")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_rows = max(1, batch_rows)
        self.max_prompt_tokens = max_prompt_tokens
        self.pad_id = (
            tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else (tokenizer.eos_token_id or 0)
        )

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
        return ids[-self.max_prompt_tokens :]

    @torch.inference_mode()
    def score_words(
        self, prompts: Sequence[str], candidates: Sequence[Sequence[list[int]]]
    ) -> list[np.ndarray]:
        """``log p(word | prompt)``, summed over the word's tokens, for each prompt's own words.

        Args:
            prompts: the prompts.
            candidates: per prompt, the token ids of the words to score after it.

        Returns:
            Per prompt, an array with one log-likelihood per candidate word.
        """
        if len(prompts) != len(candidates):
            raise ValueError(f"{len(prompts)} prompts but {len(candidates)} candidate lists.")
        out: list[np.ndarray] = [np.zeros(len(c)) for c in candidates]
        batch: list[int] = []
        rows = 0
        for i in range(len(prompts)):
            if batch and rows + len(candidates[i]) > self.batch_rows:
                self._score_batch(batch, prompts, candidates, out)
                batch, rows = [], 0
            batch.append(i)
            rows += len(candidates[i])
        if batch:
            self._score_batch(batch, prompts, candidates, out)
        return out

    def _score_batch(self, batch, prompts, candidates, out) -> None:
        encoded = [self._prompt_ids(prompts[i]) for i in batch]
        width = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(encoded):  # left padding: every prompt ends at the last column
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            mask[row, width - len(ids) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        result = self.model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True
        )
        first_logp = torch.log_softmax(result.logits[:, -1].float(), dim=-1)
        # One row per (prompt, word) pair whose word has more than one token.
        pairs = [(row, c) for row, i in enumerate(batch) for c in range(len(candidates[i]))]
        for row, c in pairs:
            out[batch[row]][c] = float(first_logp[row, candidates[batch[row]][c][0]])
        long = [(row, c) for row, c in pairs if len(candidates[batch[row]][c]) > 1]
        if not long:
            return
        steps = max(len(candidates[batch[row]][c]) for row, c in long) - 1
        fed = torch.full((len(long), steps), self.pad_id, dtype=torch.long)
        targets = torch.zeros((len(long), steps), dtype=torch.long)
        step_mask = torch.zeros((len(long), steps), dtype=torch.long)
        for k, (row, c) in enumerate(long):
            word = candidates[batch[row]][c]
            # Fed: every token but the last; predicted: every token but the first.
            fed[k, : len(word) - 1] = torch.tensor(word[:-1])
            targets[k, : len(word) - 1] = torch.tensor(word[1:])
            step_mask[k, : len(word) - 1] = 1
        owners = torch.tensor([row for row, _ in long])
        cache = result.past_key_values
        cache.batch_select_indices(owners)
        logits = self.model(
            input_ids=fed,
            attention_mask=torch.cat([mask[owners], step_mask], dim=1),
            position_ids=mask.sum(-1)[owners][:, None] + torch.arange(steps),
            past_key_values=cache,
            use_cache=True,
        ).logits.float()
        picked = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
        totals = (picked * step_mask).sum(-1)
        for k, (row, c) in enumerate(long):
            out[batch[row]][c] += float(totals[k])

    def score(
        self,
        prompts: Sequence[str],
        verbalizer: Verbalizer,
        length_normalize: bool = False,
        shortlists: Sequence[Sequence[int]] | None = None,
    ) -> np.ndarray:
        """Each label's log-likelihood after each prompt, shape ``(prompts, labels)``.

        A label's score is the log of its words' mean probability.

        Args:
            prompts: rendered prompts, each ending where the label word should follow.
            verbalizer: the words of each label.
            length_normalize: score a word by its mean log-probability per token instead of
                the sum.
            shortlists: per prompt, the indices of the labels to score (the others get
                ``-inf``); None scores every label after every prompt.
        """
        n_labels = len(verbalizer.labels)
        word_ids = [
            [word_token_ids(self.tokenizer, w) for w in verbalizer.words[label]]
            for label in verbalizer.labels
        ]
        chosen = [list(range(n_labels))] * len(prompts) if shortlists is None else shortlists
        candidates, owners = [], []
        for labels in chosen:
            words, owner = [], []
            for k in labels:
                words.extend(word_ids[k])
                owner.extend([k] * len(word_ids[k]))
            candidates.append(words)
            owners.append(owner)
        scored = self.score_words(prompts, candidates)
        out = np.full((len(prompts), n_labels), -math.inf)
        for i, (values, owner, words) in enumerate(zip(scored, owners, candidates, strict=True)):
            if length_normalize:
                values = values / np.array([len(w) for w in words])
            owner = np.array(owner)
            for k in set(owner.tolist()):
                group = values[owner == k]
                top = group.max()
                out[i, k] = top + math.log(np.exp(group - top).mean())
        return out


def calibrate(scores: np.ndarray, content_free: np.ndarray, paired: bool = False) -> np.ndarray:
    """Contextual calibration (Zhao et al. 2021): divide each label's probability by the one
    the model gives it after a content-free input (``N/A``), in log space.

    Args:
        scores: label log-likelihoods, ``(texts, labels)``.
        content_free: label log-likelihoods after content-free inputs, ``(inputs, labels)``;
            their probabilities are averaged.
        paired: ``content_free`` holds one row per text instead, each scored in that text's
            own prompt context (its demonstrations).

    Returns:
        Calibrated scores ``log p(label | x) - log p(label | content-free)`` with both
        probabilities normalised over the labels; the argmax is the prediction.
    """
    log_p = scores - _logsumexp(scores)
    cf = content_free - _logsumexp(content_free)
    if paired:
        if cf.shape != log_p.shape:
            raise ValueError(
                f"Paired calibration needs one content-free row per text: got {cf.shape} for "
                f"scores {log_p.shape}."
            )
    else:
        cf = np.log(np.exp(cf).mean(axis=0, keepdims=True))
    # A label outside a text's shortlist stays -inf (not nan).
    cf = np.where(np.isfinite(cf), cf, 0.0)
    return log_p - cf


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = np.where(np.isfinite(x), x, -np.inf).max(axis=1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(axis=1, keepdims=True))
