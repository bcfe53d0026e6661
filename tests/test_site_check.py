"""docs/check_site.py finds broken links, missing anchors, missing or blank images."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("check_site", ROOT / "docs" / "check_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _site(tmp_path: Path, index: str) -> Path:
    site = tmp_path / "html"
    (site / "guide").mkdir(parents=True)
    (site / "index.html").write_text(index)
    (site / "guide" / "page.html").write_text(
        '<h1 id="top">Guide</h1><a href="../index.html">up</a>')
    picture = np.zeros((40, 60, 3), np.uint8)
    picture[10:30, 20:40] = 255
    Image.fromarray(picture).save(site / "fig.png")
    Image.fromarray(np.full((40, 60, 3), 255, np.uint8)).save(site / "white.png")
    return site


def test_a_sound_site_passes(tmp_path):
    site = _site(tmp_path, '<a href="guide/page.html#top">g</a><a href="https://x.org">x</a>'
                           '<img src="fig.png">')
    assert _checker().static_problems(site) == []
    assert _checker().main([str(site)]) == 0


def test_broken_links_anchors_and_images_are_reported(tmp_path):
    site = _site(tmp_path, '<a href="guide/gone.html">a</a><a href="guide/page.html#nope">b</a>'
                           '<img src="missing.png"><img src="white.png">')
    problems = _checker().static_problems(site)
    assert problems == [
        "index.html: broken link guide/gone.html",
        "index.html: link guide/page.html#nope to a missing anchor",
        "index.html: missing image missing.png",
        "index.html: blank image white.png",
    ]
    assert _checker().main([str(site)]) == 1
