"""A route that leaks on purpose (it keeps 1 MiB per request), for the soak test to show
that its memory rule catches a leak (``tests/unit/test_soak.py``). It takes 20 ms a request,
so that on a fast, quiet machine the soak's request bound is not reached before the memory
sampler has taken enough samples."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

router = APIRouter(tags=["soak-test"])

_kept: list[bytes] = []


@router.post("/leak")
async def leak() -> dict:
    await asyncio.sleep(0.02)
    _kept.append(b"x" * 1024 * 1024)  # a bytes object: its pages are touched, so RSS grows
    return {"kept": len(_kept)}
