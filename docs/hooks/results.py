"""MkDocs hook: publish the plots in ``validation/results/`` and show those that exist.

The Validation and Benchmarks pages include the result tables ``validation/results/*.md`` with pymdownx.snippets
(``check_paths: false``: a table that has not been generated yet inserts nothing). The plots beside them are not
under ``docs/``, so this hook adds every ``validation/results/*.png|svg|json|csv|txt`` to the site at its root,
under its own name: a table that links ``![…](bench_cpu.png)`` or ``[data](bench_cpu.json)`` (links relative to the
table itself) works once included.

A page can also ask for plots with a marker, ``<!-- kdref:plots bench_*.png -->`` (several globs, and ``!glob`` to
leave files out: ``<!-- kdref:plots *.png !bench_* -->``), which becomes one image per existing file that matches and that the page's included tables do not already show — and nothing when none exists,
so the build never links a missing file.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

_PUBLISHED = (".png", ".svg", ".json", ".csv", ".txt")
_MARKER = re.compile(r"<!--\s*kdref:plots\s+(.+?)\s*-->")
_SNIPPET = re.compile(r'^-{1,}8<-{1,}\s+"([^"]+)"', re.M)


def _results(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent / "validation" / "results"


def on_files(files: Files, config: Any) -> Files:
    results = _results(config)
    for path in sorted(results.glob("*")):
        if path.is_file() and path.suffix in _PUBLISHED and files.get_file_from_path(path.name) is None:
            files.append(File.generated(config, path.name, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if not _MARKER.search(markdown):
        return markdown
    root = Path(config["config_file_path"]).resolve().parent
    included = "".join(
        (root / name).read_text(encoding="utf-8") for name in _SNIPPET.findall(markdown) if (root / name).is_file()
    )
    up = "../" * page.file.src_uri.count("/")

    def plots(m: re.Match[str]) -> str:
        globs = m.group(1).split()
        keep = [g for g in globs if not g.startswith("!")]
        drop = [g[1:] for g in globs if g.startswith("!")]
        names = sorted(
            p.name
            for p in _results(config).glob("*")
            if p.suffix in (".png", ".svg")
            and any(fnmatch.fnmatch(p.name, g) for g in keep)
            and not any(fnmatch.fnmatch(p.name, g) for g in drop)
        )
        return "\n\n".join(f"![{name}]({up}{name})" for name in names if name not in included)

    return _MARKER.sub(plots, markdown)
