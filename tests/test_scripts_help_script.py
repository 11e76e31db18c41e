"""Every Python script's --help shows its docstring's whole first paragraph (it used to stop after the first
line, mid-sentence)."""

from __future__ import annotations

import pytest

from script_loading import SCRIPTS, load_script

NAMES = sorted(path.stem for path in SCRIPTS.glob("*.py"))


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", NAMES)
def test_help_shows_the_whole_first_paragraph(name, capsys):
    script = load_script(name)
    with pytest.raises(SystemExit) as exit_:
        script.main(["--help"])
    assert exit_.value.code == 0
    first_paragraph = script.__doc__.split("\n\n")[0]
    assert words(first_paragraph)[-1] in ".:" and words(first_paragraph) in words(capsys.readouterr().out)


def test_bench_layer_lowerings_help_lists_every_kind(capsys):
    script = load_script("bench_layer_lowerings")
    with pytest.raises(SystemExit):
        script.main(["--help"])
    out = capsys.readouterr().out
    assert all(f"- `--kind {kind}`: " in out for kind in script.KINDS)
