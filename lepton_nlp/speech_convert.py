"""Convert a CTranslate2 Whisper ``model.bin`` into an openai-whisper checkpoint.

faster-whisper's models are CTranslate2 exports of OpenAI's Whisper weights (fp16). The
parameters map one-to-one onto openai-whisper's ``Whisper`` module, except that CTranslate2
fuses the attention projections: self-attention keeps ``[query; key; value]`` in one linear
layer (``linear_0``) and cross-attention keeps ``[key; value]`` in one (``linear_1``), and the
key projection, which has no bias in Whisper, carries zeros in the fused bias. This module
reads the binary format (``ctranslate2/specs/model_spec.py``, ``_serialize``, binary version
6), undoes the fusion, and writes ``{"dims": ..., "model_state_dict": ...}``, the file that
``whisper.load_model(path)`` takes.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CONVERTER_VERSION",
    "CTranslate2FormatError",
    "WhisperDims",
    "convert_to_openai_whisper",
    "read_ctranslate2",
    "whisper_checkpoint",
    "whisper_dims",
    "whisper_state_dict",
]

#: Bumped when the converter's output changes, so cached checkpoints are rebuilt.
CONVERTER_VERSION = 1

# The DataType enum of include/ctranslate2/types.h, in order.
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SUPPORTED_BINARY_VERSIONS = (5, 6)


class CTranslate2FormatError(ValueError):
    """A ``model.bin`` that is not a CTranslate2 Whisper model this converter can read."""


@dataclass(frozen=True)
class WhisperDims:
    """openai-whisper's ``ModelDimensions``, read off the tensors' shapes."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


def read_ctranslate2(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray]]:
    """Read every variable of a CTranslate2 ``model.bin``.

    Args:
        path: the ``model.bin`` file.

    Returns:
        ``(spec name, {variable name: array})``; aliases (e.g. the decoder's output projection,
        tied to the token embedding) are resolved to the array they name. bfloat16 arrays are
        returned as float32 (numpy has no bfloat16).

    Raises:
        CTranslate2FormatError: the file is not in a CTranslate2 binary format read here.
    """
    path = Path(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        reader = _Reader(data, path)
        version = reader.unpack("I")
        if version not in _SUPPORTED_BINARY_VERSIONS:
            raise CTranslate2FormatError(
                f"{path}: CTranslate2 binary version {version}; this converter reads versions "
                f"{_SUPPORTED_BINARY_VERSIONS} (re-export the model with ctranslate2 4.x)."
            )
        spec = reader.string()
        reader.unpack("I")  # the spec's revision
        variables: dict[str, np.ndarray] = {}
        for _ in range(reader.unpack("I")):
            name = reader.string()
            shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
            type_id = reader.unpack("B")
            nbytes = reader.unpack("I")
            raw = reader.take(nbytes)
            if type_id >= len(_DTYPES):
                raise CTranslate2FormatError(f"{path}: {name} has unknown data type {type_id}.")
            dtype = _DTYPES[type_id]
            if dtype == "bfloat16":
                bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
                array = bits.view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=dtype).copy()
            variables[name] = array.reshape(shape)
        for _ in range(reader.unpack("I")):
            alias, target = reader.string(), reader.string()
            variables[alias] = variables[target]
    return spec, variables


class _Reader:
    def __init__(self, data: mmap.mmap, path: Path) -> None:
        self.data, self.path, self.offset = data, path, 0

    def take(self, n: int) -> bytes:
        if self.offset + n > len(self.data):
            raise CTranslate2FormatError(
                f"{self.path} ends early (at byte {len(self.data)}, wanted {self.offset + n}): "
                "the file is truncated or not a CTranslate2 model."
            )
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def string(self) -> str:
        raw = self.take(self.unpack("H"))
        return raw.rstrip(b"\0").decode("utf-8")


def _count_layers(variables: dict, prefix: str) -> int:
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in variables:
        n += 1
    return n


def whisper_dims(variables: dict[str, np.ndarray]) -> WhisperDims:
    """openai-whisper's dimensions from the CTranslate2 variables' shapes."""
    try:
        conv1 = variables["encoder/conv1/weight"]
        encodings = variables["encoder/position_encodings/encodings"]
        embeddings = variables["decoder/embeddings/weight"]
        text_positions = variables["decoder/position_encodings/encodings"]
        return WhisperDims(
            n_mels=int(conv1.shape[1]),
            n_audio_ctx=int(encodings.shape[0]),
            n_audio_state=int(encodings.shape[1]),
            n_audio_head=int(variables["encoder/num_heads"]),
            n_audio_layer=_count_layers(variables, "encoder"),
            n_vocab=int(embeddings.shape[0]),
            n_text_ctx=int(text_positions.shape[0]),
            n_text_state=int(embeddings.shape[1]),
            n_text_head=int(variables["decoder/num_heads"]),
            n_text_layer=_count_layers(variables, "decoder"),
        )
    except KeyError as exc:
        raise CTranslate2FormatError(
            f"not a CTranslate2 Whisper model: variable {exc.args[0]} is missing."
        ) from None


def whisper_state_dict(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map CTranslate2 Whisper variables onto openai-whisper's ``Whisper.state_dict()`` names.

    Returns the arrays in their stored dtype (fp16 for the packaged models); every name of
    openai-whisper's state dict is present (``strict=True`` loading holds).
    """
    dims = whisper_dims(variables)
    out: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str, bias: bool = True) -> None:
        out[f"{dst}.weight"] = variables[f"{src}/weight"]
        if bias:
            out[f"{dst}.bias"] = variables[f"{src}/bias"]

    def norm(dst: str, src: str) -> None:
        out[f"{dst}.weight"] = variables[f"{src}/gamma"]
        out[f"{dst}.bias"] = variables[f"{src}/beta"]

    def split(dst: str, src: str, names: tuple[str, ...]) -> None:
        """A fused projection into ``names`` (the key has no bias in Whisper)."""
        weights = np.split(variables[f"{src}/weight"], len(names), axis=0)
        biases = np.split(variables[f"{src}/bias"], len(names), axis=0)
        for name, weight, bias in zip(names, weights, biases, strict=True):
            out[f"{dst}.{name}.weight"] = weight
            if name != "key":
                out[f"{dst}.{name}.bias"] = bias

    def block(dst: str, src: str, cross: bool) -> None:
        split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        if cross:
            linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
            split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"))
            linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
            norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    out["encoder.positional_embedding"] = variables["encoder/position_encodings/encodings"]
    for i in range(dims.n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")

    out["decoder.token_embedding.weight"] = variables["decoder/embeddings/weight"]
    out["decoder.positional_embedding"] = variables["decoder/position_encodings/encodings"]
    for i in range(dims.n_text_layer):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    norm("decoder.ln", "decoder/layer_norm")
    return out


def whisper_checkpoint(folder: str | os.PathLike) -> dict:
    """The openai-whisper checkpoint of a CTranslate2 Whisper folder (``model.bin``).

    Returns:
        ``{"dims": dict, "model_state_dict": {name: torch.Tensor}}`` plus
        ``"alignment_heads"`` (a list of ``[layer, head]`` from the folder's ``config.json``,
        when it has them) for word-level timestamps.
    """
    import torch

    folder = Path(folder)
    spec, variables = read_ctranslate2(folder / "model.bin")
    if spec != "WhisperSpec":
        raise CTranslate2FormatError(f"{folder / 'model.bin'} holds a {spec}, not a WhisperSpec.")
    dims = whisper_dims(variables)
    state = {
        k: torch.from_numpy(np.ascontiguousarray(v))
        for k, v in whisper_state_dict(variables).items()
    }
    checkpoint: dict = {"dims": asdict(dims), "model_state_dict": state}
    config = folder / "config.json"
    if config.exists():
        heads = json.loads(config.read_text(encoding="utf-8")).get("alignment_heads")
        if heads:
            checkpoint["alignment_heads"] = [[int(a), int(b)] for a, b in heads]
    return checkpoint


def convert_to_openai_whisper(folder: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Write the openai-whisper checkpoint of ``folder`` to ``target``, atomically.

    The file is written under a temporary name beside ``target`` and renamed into place, so
    a reader never sees half a checkpoint, and two processes converting at once both end
    with a whole file.
    """
    import torch

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = whisper_checkpoint(folder)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would keep the cache from other users
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
