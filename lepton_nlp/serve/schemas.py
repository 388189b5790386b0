"""Request and response models of the HTTP API (pydantic), one pair per task endpoint."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Classification",
    "ClassifyRequest",
    "ClassifyResponse",
    "EmbedRequest",
    "EmbedResponse",
    "Embedding",
    "Entity",
    "ErrorResponse",
    "HealthResponse",
    "ModelsResponse",
    "NerRequest",
    "NerResponse",
    "NerResult",
    "QaInput",
    "QaRequest",
    "QaResponse",
    "QaResult",
    "ReadyResponse",
    "RelationInput",
    "RelationResult",
    "RelationsRequest",
    "RelationsResponse",
    "SummarizeRequest",
    "SummarizeResponse",
    "Summary",
    "TranslateRequest",
    "TranslateResponse",
    "Translation",
]

_MODEL_FIELD = Field(
    default=None,
    description="Name of a loaded model (GET /v1/models lists them); may be left out when "
    "exactly one model of this task is loaded.",
    examples=["finance-sentiment"],
)


class _Strict(BaseModel):
    # A misspelt key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class _Open(BaseModel):
    # Results may carry task-specific extras (tasks grow fields; clients ignore unknown ones).
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class _TextsRequest(_Strict):
    model: str | None = _MODEL_FIELD
    inputs: list[str] = Field(
        min_length=1,
        description="Texts, each non-empty; at most max_items per request and max_text_chars "
        "characters each (GET /v1/models shows the limits).",
        examples=[["Operating profit rose 12% to EUR 40 million."]],
    )


class ClassifyRequest(_TextsRequest):
    """Texts to classify."""


class NerRequest(_TextsRequest):
    """Texts to tag with named entities."""


class SummarizeRequest(_TextsRequest):
    """Texts to summarize."""


class TranslateRequest(_TextsRequest):
    """Texts to translate (the model fixes the language pair)."""


class EmbedRequest(_TextsRequest):
    """Texts to embed."""


class RelationInput(_Strict):
    text: str
    head: tuple[int, int] = Field(description="Character span [start, end) of the first entity.")
    tail: tuple[int, int] = Field(description="Character span [start, end) of the second entity.")

    @model_validator(mode="after")
    def _spans_inside_text(self) -> RelationInput:
        for name in ("head", "tail"):
            start, end = getattr(self, name)
            if not 0 <= start < end <= len(self.text):
                raise ValueError(
                    f"{name} span [{start}, {end}] must satisfy 0 <= start < end <= "
                    f"len(text) = {len(self.text)}"
                )
        return self


class RelationsRequest(_Strict):
    """Entity pairs whose relation to classify."""

    model: str | None = _MODEL_FIELD
    inputs: list[RelationInput] = Field(
        min_length=1,
        examples=[[{"text": "Nokia opened a plant in Oulu.", "head": [0, 5], "tail": [24, 28]}]],
    )


class QaInput(_Strict):
    question: str
    context: str


class QaRequest(_Strict):
    """Questions, each answered from its own context."""

    model: str | None = _MODEL_FIELD
    inputs: list[QaInput] = Field(
        min_length=1,
        examples=[
            [{"question": "Where is the plant?", "context": "Nokia opened a plant in Oulu."}]
        ],
    )


class Classification(_Open):
    label: str | None = Field(default=None, description="Best label (single-label models).")
    labels: list[str] | None = Field(
        default=None, description="Labels above threshold (multi-label models)."
    )
    score: float | None = None
    scores: dict[str, float] = Field(default_factory=dict, description="Probability per label.")


class Entity(_Open):
    label: str
    start: int = Field(description="Character offset where the entity starts.")
    end: int = Field(description="Character offset just past the entity.")
    text: str
    score: float | None = None


class NerResult(_Open):
    text: str
    entities: list[Entity]
    tags: list[str] = Field(default_factory=list, description="One tag per word.")


class RelationResult(_Open):
    label: str
    score: float | None = None
    scores: dict[str, float] = Field(default_factory=dict)


class QaResult(_Open):
    answer: str = Field(description="The answer span; empty when the model finds no answer.")
    start: int | None = Field(default=None, description="Character offset in the context.")
    end: int | None = None
    score: float | None = None
    no_answer: bool = False


class Summary(_Open):
    generated_text: str = Field(description="The summary.")


class Translation(_Open):
    generated_text: str = Field(description="The translation.")


class Embedding(_Open):
    embedding: list[float]


class _Response(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(description="The model that answered.")


class ClassifyResponse(_Response):
    results: list[Classification]


class NerResponse(_Response):
    results: list[NerResult]


class RelationsResponse(_Response):
    results: list[RelationResult]


class QaResponse(_Response):
    results: list[QaResult]


class SummarizeResponse(_Response):
    results: list[Summary]


class TranslateResponse(_Response):
    results: list[Translation]


class EmbedResponse(_Response):
    dim: int = Field(description="Length of each embedding.")
    results: list[Embedding]


class ErrorResponse(BaseModel):
    detail: Any = Field(description="What was wrong, and the limit or the fix.")


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str = Field(description="ready, starting or draining.")
    models: dict[str, str] = Field(default_factory=dict, description="Model name -> task.")


class ModelsResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    models: dict[str, dict[str, Any]]
    limits: dict[str, Any]
