"""serve leaves what start-up built out of later garbage collections."""

from __future__ import annotations

import gc

from llm_mux.serve.server import settle


def test_settle_freezes_what_start_up_built() -> None:
    frozen = gc.get_freeze_count()
    try:
        settle()
        assert gc.get_freeze_count() > frozen
        assert gc.get_count()[0] < 50  # collected just before: no garbage frozen with it
    finally:
        gc.unfreeze()
