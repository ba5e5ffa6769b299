"""Checks of a ``report.html`` shared by the report tests: well-formed, no external resource,
and loaded in a real headless browser (Debian's ``chromium``) without a console message,
its screenshot not blank."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                    "(apt-get install -y chromium; .ci/run installs it)")
_NS = "{http://www.w3.org/1999/xhtml}"


def parse(path: Path) -> ET.Element:
    """The page as XML (it is written XHTML-style): a parse error fails the test."""
    return ET.fromstring(Path(path).read_text(encoding="utf-8").removeprefix("<!DOCTYPE html>"))


def text_of(root: ET.Element) -> str:
    """Every text of the page, whitespace collapsed (what a reader sees)."""
    return re.sub(r"\s+", " ", " ".join(root.itertext()))


def tables(root: ET.Element) -> list[list[list[str]]]:
    """Every table as rows of cell texts (header row first)."""
    return [[["".join(c.itertext()).strip() for c in tr] for tr in t.iter(f"{_NS}tr")]
            for t in root.iter(f"{_NS}table")]


def external_urls(text: str) -> list[str]:
    """``src``/``href``/``url(...)`` values that point outside the file (anything but
    ``data:`` and in-page ``#`` links)."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", text)
    refs += re.findall(r"""url\(\s*["']?([^"')]*)""", text)
    return [r for r in refs if not r.startswith(("data:", "#"))]


def well_formed(path: Path) -> ET.Element:
    """Parses, holds no external reference, no script, and every image is inlined."""
    text = Path(path).read_text(encoding="utf-8")
    root = parse(path)
    assert external_urls(text) == [] and "http://" not in text.replace(
        "http://www.w3.org/1999/xhtml", "") and "https://" not in text
    assert not list(root.iter(f"{_NS}script"))
    images = list(root.iter(f"{_NS}img"))
    assert all(img.get("src").startswith("data:image/png;base64,") for img in images)
    return root


def load_in_chromium(path: Path, shot: Path, *, size=(1280, 2000)) -> tuple[list[str], np.ndarray]:
    """Open ``path`` in headless chromium, screenshot it into ``shot``: the console
    messages it logged and the screenshot's pixels."""
    run = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                          "--no-first-run", "--enable-logging=stderr", "--v=0",
                          f"--user-data-dir={shot.parent / '.chromium'}",
                          f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}",
                          Path(path).resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.exists(), run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    import matplotlib.image

    return console, matplotlib.image.imread(shot)


def assert_renders(path: Path, shot: Path) -> None:
    """No console message; the screenshot has content (not one colour, not all white)."""
    console, pixels = load_in_chromium(path, shot)
    assert console == []
    rgb = pixels[..., :3]
    assert rgb.std() > 0.01 and (rgb < 0.9).any(axis=-1).mean() > 0.01
