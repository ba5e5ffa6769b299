"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    code = blocks[0].replace("n_accounts=2_000", "n_accounts=200")   # same code, smaller company
    exec(compile(code, "README.md", "exec"), {})
    assert "conversion" in capsys.readouterr().out
    assert (tmp_path / "acme" / "pqlml.toml").exists()


def test_readme_scoring_example_runs(tmp_path, monkeypatch, capsys):
    from pqlml.simulate import simulate

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    simulate(800, 1, tmp_path / "acme", months=12)
    exec(compile(blocks[1], "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "reason_1" in out and "free_mail" in out
