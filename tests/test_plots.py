"""Tests for seqgen.plots: each exploration figure is a plotly Figure holding the right data."""

from collections import Counter

import plotly.graph_objects as go

from seqgen import plots

COUNTS = Counter({"C4": 50, "E4": 30, "G4": 30, "0.4.7": 7, "B-3": 2, "F#5": 1})


def test_count_plot_one_bar_per_token_most_frequent_first():
    figure = plots.count_plot(COUNTS)
    assert isinstance(figure, go.Figure)
    (bars,) = figure.data
    assert list(bars.x) == [token for token, _ in COUNTS.most_common()]
    assert list(bars.y) == [50, 30, 30, 7, 2, 1]
    assert figure.layout.title.text == "Token counts"


def test_count_plot_caps_the_number_of_bars():
    figure = plots.count_plot(COUNTS, max_tokens=3)
    assert len(figure.data[0].x) == 3
    assert list(figure.data[0].y) == [50, 30, 30]
    assert "top 3 of 6" in figure.layout.title.text


def test_frequency_kde_density_and_rug():
    figure = plots.frequency_kde(COUNTS, min_count=5)
    assert isinstance(figure, go.Figure)
    density, rug = figure.data
    assert len(density.x) == len(density.y) == 400
    assert min(density.y) >= 0 and max(density.y) > 0
    assert sorted(rug.x) == sorted(COUNTS.values())  # one mark per distinct token
    assert len(rug.y) == len(COUNTS)
    assert [shape.x0 for shape in figure.layout.shapes] == [5]  # the min-count line


def test_frequency_kde_degenerate_counts_still_draw():
    figure = plots.frequency_kde(Counter({"a": 3, "b": 3}))
    assert len(figure.data) == 1  # no density for identical values, just the marks
    assert list(figure.data[0].x) == [3, 3]
    assert plots.frequency_kde(Counter({"a": 1})).data[0].x.tolist() == [1]
    assert len(plots.frequency_kde(COUNTS).layout.shapes) == 0


def test_top_tokens_horizontal_bars_with_whitespace_named():
    counts = Counter({" ": 9, "\n": 5, "a": 4, "b": 2, "c": 1})
    figure = plots.top_tokens(counts, top=3)
    (bars,) = figure.data
    assert bars.orientation == "h"
    assert list(bars.y) == ["a", "'\\n'", "' '"]  # least frequent at the bottom of the list
    assert list(bars.x) == [4, 5, 9]
    assert len(plots.top_tokens(counts).data[0].y) == len(counts)


def test_char_frequencies_names_invisible_characters():
    counts = Counter("ab a\nb\ta")
    figure = plots.char_frequencies(counts)
    (bars,) = figure.data
    assert len(bars.x) == len(counts)
    assert dict(zip(bars.x, bars.y)) == {"a": 3, "b": 2, "space": 1, "newline": 1, "tab": 1}
