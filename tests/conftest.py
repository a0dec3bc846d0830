"""Shared fixtures: tiny seeded models of each family (small for test speed), no network anywhere."""

import dataclasses
import os
import shutil
import tempfile

import pytest
import torch

from core.config import PRESETS
from core.model import Transformer

# Model caches (the Hub download folder, SmolLM2's converted weights) go to one temporary folder per test session,
# never into the user's own cache, and are removed at the end (SmolLM2's is 540 MB); a test that needs its own
# folder sets GLASSBOX_CACHE itself.
# A bug on a page fails its test (in use, the app shows a friendly message and logs the traceback: pages/common/errors)
os.environ.setdefault("GLASSBOX_RAISE_BUGS", "1")
SESSION_CACHE = None if "GLASSBOX_CACHE" in os.environ else tempfile.mkdtemp(prefix="glassbox-test-cache-")
if SESSION_CACHE:
    os.environ["GLASSBOX_CACHE"] = SESSION_CACHE
    os.environ.setdefault("HF_HUB_CACHE", os.path.join(SESSION_CACHE, "huggingface"))  # never the user's own


@pytest.fixture(scope="session", autouse=True)
def remove_session_cache():
    yield
    if SESSION_CACHE:
        shutil.rmtree(SESSION_CACHE, ignore_errors=True)


def tiny(name: str, **changes) -> Transformer:
    torch.manual_seed(0)
    model = Transformer(dataclasses.replace(PRESETS[name], **changes))
    return model.eval().requires_grad_(False)


@pytest.fixture(params=["tiny-sinusoidal", "tiny-llama", "tiny-stories-1m"])
def any_model(request):
    return tiny(request.param, dropout=0.0)
