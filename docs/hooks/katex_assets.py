"""MkDocs hook: copy KaTeX's browser assets from ``docs/node_modules/katex/dist`` into ``site/assets/katex/``.

KaTeX is pinned in ``docs/package.json`` (install it with ``npm ci --prefix docs``). The assets are not committed;
they are copied at build time so that every page typesets its math from local files, with no request to another
host when it is viewed. The build stops with a clear error when the package is missing or is not the pinned version.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

# The files a page loads (katex.min.css pulls in fonts/ by relative URL).
_ASSETS = ("katex.min.js", "katex.min.css", "fonts")
_TARGET = "assets/katex"


def _docs_root(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent / "docs"


def _katex_dist(config: Any) -> Path:
    docs = _docs_root(config)
    dist = docs / "node_modules" / "katex" / "dist"
    if not (dist / "katex.min.js").is_file():
        raise PluginError(
            f"KaTeX is not installed: {dist} is missing. Install the pinned version with "
            "`npm ci --prefix docs` (Node ≥ 20), then build again."
        )
    pinned = json.loads((docs / "package.json").read_text(encoding="utf-8"))["dependencies"]["katex"]
    installed = json.loads((dist.parent / "package.json").read_text(encoding="utf-8"))["version"]
    if installed != pinned:
        raise PluginError(
            f"docs/node_modules has KaTeX {installed} but docs/package.json pins {pinned}: run `npm ci --prefix docs`."
        )
    return dist


def on_config(config: Any) -> Any:
    _katex_dist(config)  # fail before anything is built
    return config


def on_post_build(config: Any) -> None:
    dist = _katex_dist(config)
    target = Path(config["site_dir"]) / _TARGET
    target.mkdir(parents=True, exist_ok=True)
    for name in _ASSETS:
        src, dst = dist / name, target / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
