"""A small router mounted by name (``--routes tests.unit.security_routes:router``) in the
security tests: it uses the core's shared guards as an application's routes would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from lepton_nlp.security import InputLimits, contained_path
from lepton_nlp.serve.app import request_limits

router = APIRouter(tags=["security-test"])

#: The folder ``/files/read`` may read from (set by the test).
FILES_ENV = "LEPTON_TEST_FILES"


class Text(BaseModel):
    text: str


class Texts(BaseModel):
    texts: list[str]


class FileName(BaseModel):
    name: str


@router.get("/hello")
async def hello() -> dict:
    return {"hello": "world"}


@router.post("/echo")
async def echo(body: Text, limits: Annotated[InputLimits, Depends(request_limits)]) -> dict:
    return {"text": limits.check_text(body.text)}


@router.post("/count")
async def count(body: Texts, limits: Annotated[InputLimits, Depends(request_limits)]) -> dict:
    limits.check_items(len(body.texts))
    return {"count": len(body.texts)}


@router.post("/files/read")
async def read(body: FileName) -> dict:
    root = Path(os.environ.get(FILES_ENV, "."))
    return {"text": contained_path(root, body.name, "file").read_text(encoding="utf-8")}


@router.delete("/items")
async def delete(body: Texts) -> dict:
    return {"deleted": len(body.texts)}
