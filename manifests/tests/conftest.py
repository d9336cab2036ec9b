"""Fixtures of the manifests' tests: every rendering once per session (manifest_rendering.py)."""

from __future__ import annotations

import pytest
from manifest_rendering import RENDERINGS, Rendering, render_all


@pytest.fixture(scope="session")
def renderings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendering]:
    return render_all(tmp_path_factory.mktemp("rendered"))


@pytest.fixture(params=RENDERINGS)
def rendering(request: pytest.FixtureRequest, renderings: dict[str, Rendering]) -> Rendering:
    return renderings[request.param]
