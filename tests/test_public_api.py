"""The public surface: `__all__` lists exactly what the package exports."""

from __future__ import annotations

import isobind


def test_all_names_exist() -> None:
    for name in isobind.__all__:
        assert hasattr(isobind, name), name


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(isobind).items()
        if not name.startswith("_") and not getattr(value, "__name__", "").startswith("isobind._")
    }
    modules = {name for name in public if type(getattr(isobind, name)).__name__ == "module"}
    assert public - modules - {"annotations"} <= set(isobind.__all__)


def test_errors_share_one_root() -> None:
    for name in ("ApiError", "ClosedError", "ConfigError", "SandboxError", "UpstreamError"):
        assert issubclass(getattr(isobind, name), isobind.IsobindError)
