"""Check the built site: ``python docs/check_site.py [docs/_build/html] [--browser]``.

Without a browser: every internal link of every page points to a file that exists
(and to an anchor that exists in it), and every image a page shows exists and
decodes to a picture that is not blank.

With ``--browser`` (``make docs-check``): headless Chromium (Debian package
``chromium``) also renders the index, a user-guide page and a gallery page,
takes a screenshot of each into ``docs/_build/screenshots/``, and fails on a
blank screenshot, a rendered page that shows fewer images than its HTML holds,
or formulas left untypeset (MathJax is bundled in the site, so it needs no network).

Exit status 0 when all is well; otherwise each problem on one line, status 1.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image

PAGES = ("index.html", "user_guide/em.html", "auto_examples/plot_anemia_iterations.html")


class _Page(HTMLParser):
    """The links, images and anchors (ids) of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if tag == "img" and attributes.get("src"):
            self.images.append(attributes["src"])


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def _local(target: str) -> bool:
    scheme = urlsplit(target).scheme
    return not scheme and not target.startswith(("//", "mailto:", "javascript:"))


def blank(image: Image.Image) -> bool:
    """True for a picture of (almost) one colour: nothing drawn."""
    pixels = np.asarray(image.convert("L"), dtype=float)
    return pixels.size == 0 or float(pixels.std()) < 2.0


def static_problems(site: Path) -> list[str]:
    """Broken internal links and anchors, missing or blank images, over every page."""
    problems, pages = [], {p: parse(p) for p in sorted(site.rglob("*.html"))}
    for path, page in pages.items():
        where = path.relative_to(site)
        for href in page.links:
            if not _local(href):
                continue
            parts = urlsplit(href)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if not target.exists():
                problems.append(f"{where}: broken link {href}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where}: link {href} to a missing anchor")
        for src in page.images:
            if not _local(src):
                continue
            image = (path.parent / unquote(urlsplit(src).path)).resolve()
            if not image.is_file():
                problems.append(f"{where}: missing image {src}")
            elif image.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif"):
                with Image.open(image) as picture:
                    if blank(picture):
                        problems.append(f"{where}: blank image {src}")
    return problems


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _chromium(executable: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={profile}", "--allow-file-access-from-files",
             "--virtual-time-budget=5000", *args],
            capture_output=True, text=True, timeout=120)


def browser_problems(site: Path, out: Path) -> list[str]:
    """Render PAGES in headless Chromium: screenshots not blank, every image in the DOM."""
    executable = browser()
    if executable is None:
        return ["no headless browser: install the Debian package chromium"]
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    for name in PAGES:
        page = (site / name).resolve()
        if not page.is_file():
            problems.append(f"{name}: not built")
            continue
        shot = out / (name.replace("/", "_").removesuffix(".html") + ".png")
        done = _chromium(executable, f"--screenshot={shot}", "--window-size=1280,1600",
                         page.as_uri())
        if not shot.is_file():
            problems.append(f"{name}: no screenshot ({done.stderr.strip()[-300:]})")
            continue
        with Image.open(shot) as picture:
            if blank(picture):
                problems.append(f"{name}: the rendered page is blank ({shot})")
        dom = _chromium(executable, "--dump-dom", page.as_uri()).stdout
        rendered = _Page()
        rendered.feed(dom)
        if not dom.strip() or "<body" not in dom:
            problems.append(f"{name}: the browser rendered no body")
        elif 'class="math' in page.read_text() and "mjx-container" not in dom:
            problems.append(f"{name}: the formulas were not typeset (MathJax did not run)")
        elif len(rendered.images) < len(parse(page).images):
            problems.append(f"{name}: the browser shows {len(rendered.images)} images of "
                            f"{len(parse(page).images)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default="docs/_build/html", type=Path)
    parser.add_argument("--browser", action="store_true", help="also render in Chromium")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"{args.site}: no built site (run make docs)")
        return 1
    problems = static_problems(args.site)
    if args.browser:
        problems += browser_problems(args.site, args.site.parent / "screenshots")
    for problem in problems:
        print(problem)
    pages = len(list(args.site.rglob("*.html")))
    print(f"{pages} pages checked: {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
