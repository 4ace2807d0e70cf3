"""descent.prose: the one glue and table helpers every chapter uses."""

import IPython.display
import numpy as np
import pytest

from descent import prose


@pytest.mark.parametrize("value,display", [(np.float64(0.25), False), (np.int64(3), False),
                                           (np.array(1.5), False), ("1,234", False), (2.5, True)])
def test_glue_emits_what_myst_nb_glue_emits_for_the_plain_value(monkeypatch, value, display):
    import myst_nb.ext.glue as myst_glue

    ours, theirs = [], []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: ours.append((a, k)))
    monkeypatch.setattr(myst_glue, "ipy_display", lambda *a, **k: theirs.append((a, k)))
    prose.glue("name", value, display=display)
    myst_glue.glue("name", value.item() if isinstance(value, (np.generic, np.ndarray)) else value,
                   display=display)
    assert ours == theirs and len(ours) == 1


def test_plain_turns_numpy_scalars_into_python_numbers():
    assert type(prose.plain(np.float64(0.5))) is float and type(prose.plain(np.int32(2))) is int
    assert prose.plain("x") == "x" and type(prose.plain(np.array(7))) is int


def test_markdown_table_layout():
    md = prose.markdown_table(["a", "b|c"], [(1, "x"), ("y", 2.5)])
    assert md.splitlines() == ["| a | b\\|c |", "|:---|---:|", "| 1 | x |", "| y | 2.5 |"]


def test_table_shows_the_markdown_table(monkeypatch):
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    assert prose.table(["a", "b"], [(1, 2)]) is None
    assert [m.data for m in shown] == [prose.markdown_table(["a", "b"], [(1, 2)])]


def test_html_table_escapes_its_cells():
    html = prose.html_table(["a<b"], [["x & y"]]).data
    assert "a&lt;b" in html and "x &amp; y" in html and html.count("<tr>") == 2


def test_down_and_up_round_towards_the_bound():
    assert prose.down(0.12345, 3) == 0.123 and prose.up(0.12345, 3) == 0.124
