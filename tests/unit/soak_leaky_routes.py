"""A route that leaks on purpose (it keeps 256 KiB per request), for the soak test to show
that its memory rule catches a leak (``tests/unit/test_soak.py``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["soak-test"])

_kept: list[bytes] = []


@router.post("/leak")
async def leak() -> dict:
    _kept.append(b"x" * 256 * 1024)  # a bytes object: its pages are touched, so RSS grows
    return {"kept": len(_kept)}
