"""One self-contained HTML page per command: ``report.html``, to open or share as is.

A :class:`Page` holds the key numbers (shown first), a short "how to read this" and its
:class:`Section` s; a section's blocks are text (a paragraph), a DataFrame (a table) or a
matplotlib figure (a PNG inlined as a ``data:`` URI). :meth:`Page.html` renders it;
:meth:`Page.write` writes it atomically (:func:`pqlml.outputs.write_text`).

The page needs nothing else: its style is inline, it has no script and no link to load,
so it opens offline, from a mail attachment or a shared drive. Every text (titles,
numbers, table cells: event names and reasons come from user data) is escaped; nothing a
cell holds can become markup. The page is well-formed XML as well as HTML (XHTML-style
void elements), so :mod:`xml.etree` can read it back.

Each command builds its page beside its stage (``discover``, ``backtest``, ``score`` and
``demo``); the demo's page joins the others' sections.

Examples
--------
>>> import pandas as pd
>>> page = Page("Scores", numbers={"scored": "1,204", "tier 1": "87"},
...             how_to_read=["Tier 1 first."],
...             sections=[Section("Top accounts", [pd.DataFrame({"event": ["<b>x</b>"]})])])
>>> text = page.html()
>>> "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text
True
>>> import xml.etree.ElementTree as ET
>>> ET.fromstring(text.removeprefix("<!DOCTYPE html>")).tag
'{http://www.w3.org/1999/xhtml}html'
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import pandas as pd

from .outputs import write_text

__all__ = ["Page", "Section", "figure_uri", "REPORT_NAME"]

#: The file every command's page is written to, in its output folder.
REPORT_NAME = "report.html"

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
margin:0;background:#f5f6f8}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;
border-bottom:1px solid #dde1e7;padding-bottom:4px}
.sub{color:#5b6475;margin:0 0 18px}
.numbers{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 20px}
.number{border:1px solid #dde1e7;border-radius:8px;padding:10px 14px;min-width:150px;
background:#fafbfc}
.number b{display:block;font-size:22px}.number span{color:#5b6475;font-size:13px}
.how{background:#eef4fb;border-left:4px solid #3b73b9;padding:8px 16px;margin:0 0 8px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border-bottom:1px solid #e4e7ec;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f2f5}tr:nth-child(even) td{background:#fafbfc}
img{max-width:100%;height:auto;display:block;margin:8px 0 16px}
"""


@dataclass
class Section:
    """A titled part of a page: ``blocks`` in order, each a ``str`` (a paragraph), a
    DataFrame (a table, its index left out), a matplotlib figure or the path of a PNG
    file already written (an image, inlined; ``alt`` from the section's title)."""

    title: str
    blocks: list = field(default_factory=list)


@dataclass
class Page:
    """A report: ``title``, ``subtitle`` (one line under it), ``numbers`` (label -> value,
    the key numbers, first), ``how_to_read`` (a few sentences), then ``sections``."""

    title: str
    numbers: dict = field(default_factory=dict)
    how_to_read: list = field(default_factory=list)
    sections: list = field(default_factory=list)
    subtitle: str = ""

    def html(self) -> str:
        """The page as one HTML document (UTF-8 text, no external resource)."""
        parts = ['<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en">',
                 '<head><meta charset="utf-8"/>',
                 '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
                 f"<title>{escape(self.title)}</title><style>{_STYLE}</style></head>",
                 f"<body><main><h1>{escape(self.title)}</h1>"]
        if self.subtitle:
            parts.append(f'<p class="sub">{escape(self.subtitle)}</p>')
        if self.numbers:
            parts.append('<div class="numbers">' + "".join(
                f'<div class="number"><b>{escape(str(v))}</b><span>{escape(str(k))}</span></div>'
                for k, v in self.numbers.items()) + "</div>")
        if self.how_to_read:
            parts.append('<div class="how"><h2>How to read this</h2><ul>'
                         + "".join(f"<li>{escape(t)}</li>" for t in self.how_to_read)
                         + "</ul></div>")
        for section in self.sections:
            parts.append(f"<section><h2>{escape(section.title)}</h2>")
            parts += [_block(b, section.title) for b in section.blocks]
            parts.append("</section>")
        parts.append("</main></body></html>\n")
        return "\n".join(parts)

    def write(self, path: str | Path) -> Path:
        """The page into ``path`` (e.g. ``out / REPORT_NAME``), atomically."""
        return write_text(self.html(), path)


def _block(block, title: str) -> str:
    if isinstance(block, str):
        return f"<p>{escape(block)}</p>"
    if isinstance(block, pd.DataFrame):
        return _table(block)
    if hasattr(block, "savefig"):
        return f'<img alt="{escape(title)}" src="{figure_uri(block)}"/>'
    if isinstance(block, Path) and block.suffix.lower() == ".png":
        return f'<img alt="{escape(title)}" src="{_png_uri(block.read_bytes())}"/>'
    raise TypeError(f"A report section holds text, DataFrames, figures and PNG paths; got "
                    f"{type(block).__name__} in {title!r}.")


def _table(frame: pd.DataFrame) -> str:
    """``frame`` as an escaped table; empty cells blank."""
    if frame.empty:
        return "<p>(none)</p>"
    text = frame.astype(object).where(frame.notna(), "")
    return text.to_html(index=False, escape=True, border=0, na_rep="")


def figure_uri(fig, *, dpi: int = 90) -> str:
    """``fig`` as a ``data:image/png;base64,...`` URI (nothing written to disk)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return _png_uri(buffer.getvalue())


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
