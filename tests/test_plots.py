"""Tests for seqgen.plots: each exploration figure is a plotly Figure holding the right data."""

from collections import Counter

import plotly.graph_objects as go

from seqgen import plots

COUNTS = Counter({"C4": 50, "E4": 30, "G4": 30, "0.4.7": 7, "B-3": 2, "F#5": 1})


def test_count_plot_one_bar_per_token_most_frequent_first():
    figure = plots.count_plot(COUNTS)
    assert isinstance(figure, go.Figure)
    (bars,) = figure.data
    assert list(bars.x) == ["C4", "E4", "G4", "0.4.7", "B♭3", "F♯5"]  # the page shows ♭ and ♯
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


def test_rank_frequency_on_log_axes_with_the_min_count_line():
    figure = plots.rank_frequency(COUNTS, min_count=5)
    dots, line = figure.data
    assert list(dots.x) == [1, 2, 3, 4, 5, 6] and list(dots.y) == [50, 30, 30, 7, 2, 1]
    assert list(dots.text) == ["C4", "E4", "G4", "0.4.7", "B♭3", "F♯5"]  # flats and sharps as people write them
    assert figure.layout.xaxis.type == figure.layout.yaxis.type == "log"
    assert list(line.x) == [1, 6] and list(line.y) == [5, 5] and line.name == "min-count 5"
    assert len(plots.rank_frequency(COUNTS).data) == 1


def test_top_tokens_label_every_bar():
    figure = plots.top_tokens(COUNTS)
    (bars,) = figure.data
    assert list(bars.y) == ["F♯5", "B♭3", "0.4.7", "G4", "E4", "C4"]
    assert list(figure.layout.yaxis.tickvals) == list(figure.layout.yaxis.ticktext) == list(bars.y)  # plotly skips none
    assert list(bars.text) == [str(count) for count in bars.x]  # each bar shows its count


def test_the_study_grid_shares_one_scale_per_metric():
    runs = {name: [{"epoch": 1, "accuracy": accuracy, "loss": 1.0, "val_accuracy": accuracy, "val_loss": 1.1}]
            for name, accuracy in (("mse-adam", 0.05), ("categorical_crossentropy-adam", 0.2), ("mse-sgd", 0.5),
                                   ("categorical_crossentropy-sgd", 0.3))}
    layout = plots.study_figure(runs).layout
    assert [layout[f"yaxis{number}"].matches for number in (1, 3, 5, 7)] == [None, "y", "y", "y"]  # every accuracy plot
    # Losses of one kind share a scale; MSE and cross-entropy values are not comparable, so they do not.
    assert [layout[f"yaxis{number}"].matches for number in (2, 4, 6, 8)] == [None, None, "y2", "y4"]
    assert layout.yaxis.rangemode == "tozero"


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
