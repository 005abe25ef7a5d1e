"""Plotly figures for corpus exploration, ready for the studio and for notebooks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import plotly.graph_objects as go

from seqgen.music import display_token


def count_plot(counts: Counter, max_tokens: int = 300) -> go.Figure:
    """The reference's count plot: one bar per token, most frequent first."""
    ranked = counts.most_common(max_tokens)
    figure = go.Figure(go.Bar(x=[display_token(token) for token, _ in ranked], y=[count for _, count in ranked]))
    shown = f" (top {max_tokens} of {len(counts)})" if len(counts) > max_tokens else ""
    figure.update_layout(title=f"Token counts{shown}", xaxis_title="token", yaxis_title="occurrences", xaxis_tickangle=-60)
    return figure


def frequency_kde(counts: Counter, min_count: int | None = None) -> go.Figure:
    """The reference's KDE of token frequencies (how many tokens occur how often)."""
    from scipy.stats import gaussian_kde

    values = np.array(list(counts.values()), dtype=float)
    figure = go.Figure()
    if len(values) >= 2 and np.ptp(values) > 0:
        grid = np.linspace(0.0, values.max() * 1.05, 400)
        figure.add_trace(go.Scatter(x=grid, y=gaussian_kde(values)(grid), mode="lines", fill="tozeroy", name="density"))
    figure.add_trace(go.Scatter(x=values, y=np.zeros_like(values), mode="markers", marker={"symbol": "line-ns-open", "size": 10}, name="tokens"))
    if min_count is not None:
        figure.add_vline(x=min_count, line_dash="dash", annotation_text=f"min-count {min_count}")
    figure.update_layout(title="Distribution of token frequencies", xaxis_title="occurrences of a token", yaxis_title="density")
    return figure


def rank_frequency(counts: Counter, min_count: int | None = None) -> go.Figure:
    """Each token's count against its rank (1 = most frequent) on log–log axes, with the min-count line.

    A falling straight line is Zipf's law: a few tokens are very common and
    most are rare; the tokens under the min-count line are dropped.
    """
    ranked = counts.most_common()
    figure = go.Figure(go.Scatter(
        x=list(range(1, len(ranked) + 1)), y=[count for _, count in ranked], mode="markers", name="tokens",
        text=[display_token(repr(token) if token.isspace() else token) for token, _ in ranked],
        hovertemplate="%{text}: rank %{x}, %{y} times<extra></extra>",
    ))
    if min_count is not None and ranked:  # a trace, not add_hline: its annotation would need log10 units on a log axis
        figure.add_trace(go.Scatter(x=[1, len(ranked)], y=[min_count, min_count], mode="lines+text", name=f"min-count {min_count}",
                                    line={"dash": "dash", "color": "gray"}, text=["", f"min-count {min_count}"],
                                    textposition="top left", hoverinfo="skip"))
    figure.update_layout(title="Token counts by rank", xaxis={"title": {"text": "rank (1 = most frequent)"}, "type": "log"},
                         yaxis={"title": {"text": "occurrences"}, "type": "log"}, showlegend=False)
    return figure


def top_tokens(counts: Counter, top: int = 20) -> go.Figure:
    """Horizontal bars of the ``top`` most frequent tokens, every bar labelled with its token and count."""
    ranked = counts.most_common(top)[::-1]
    labels = [repr(token) if token.isspace() else display_token(token) for token, _ in ranked]
    figure = go.Figure(go.Bar(x=[count for _, count in ranked], y=labels, orientation="h",
                              text=[count for _, count in ranked], textposition="auto"))
    figure.update_layout(title=f"Top {len(ranked)} tokens", xaxis_title="occurrences", height=max(320, 22 * len(ranked) + 140),
                         yaxis={"title": {"text": "token"}, "tickmode": "array", "tickvals": labels, "ticktext": labels,
                                "automargin": True})
    return figure


def char_frequencies(counts: Counter) -> go.Figure:
    """Bar chart of every character's count, with space and newline named."""
    names = {" ": "space", "\n": "newline", "\t": "tab"}
    ranked = counts.most_common()
    figure = go.Figure(go.Bar(x=[names.get(char, char) for char, _ in ranked], y=[count for _, count in ranked]))
    figure.update_layout(title="Character frequencies", xaxis_title="character", yaxis_title="occurrences")
    return figure


def training_curves(history: list[dict]) -> go.Figure:
    """Loss and accuracy per epoch, training and validation, with the unigram baseline."""
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    epochs = [record["epoch"] for record in history]
    for column, (metric, label) in enumerate([("loss", "loss"), ("accuracy", "accuracy")], start=1):
        for prefix, dash in (("", "solid"), ("val_", "dash")):
            values = [record.get(prefix + metric) for record in history]
            if any(value is not None for value in values):
                figure.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=f"{'validation' if prefix else 'training'} {label}", line={"dash": dash}), row=1, col=column)
    baseline = [record.get("unigram_val_loss") for record in history]
    if history and baseline[0] is not None:
        figure.add_trace(go.Scatter(x=epochs, y=baseline, mode="lines+markers", name="unigram baseline", line={"dash": "dot", "color": "gray"}), row=1, col=1)
    figure.update_xaxes(title_text="epoch")
    return figure


def study_figure(histories: dict[str, list[dict]]) -> go.Figure:
    """The study grid: per loss × optimizer run, accuracy and loss curves side by side."""
    from plotly.subplots import make_subplots

    names = list(histories) or ["(no runs)"]
    titles = [title for name in names for title in (f"{name}: accuracy", f"{name}: loss")]
    figure = make_subplots(rows=len(names), cols=2, subplot_titles=titles, vertical_spacing=min(0.08, 0.5 / max(1, len(names))))
    for row, name in enumerate(names, start=1):
        history = histories.get(name, [])
        epochs = [record["epoch"] for record in history]
        for column, metric in enumerate(("accuracy", "loss"), start=1):
            for prefix, dash in (("", "solid"), ("val_", "dash")):
                figure.add_trace(
                    go.Scatter(x=epochs, y=[record.get(prefix + metric) for record in history], mode="lines+markers",
                               name=f"{name} {'validation' if prefix else 'training'} {metric}", line={"dash": dash}, showlegend=False),
                    row=row, col=column,
                )
    # One scale per metric, so 0.05 and 0.2 accuracy never look alike: every accuracy plot shares the first one's
    # axis, and every loss plot the axis of the first run with the same loss (runs are named LOSS-OPTIMIZER).
    figure.update_yaxes(rangemode="tozero")
    first_row: dict[str, int] = {}
    for row, name in enumerate(names, start=1):
        anchor = first_row.setdefault(name.rpartition("-")[0] or name, row)
        if row > 1:
            figure.update_yaxes(matches="y", row=row, col=1)
        if anchor != row:
            figure.update_yaxes(matches=f"y{2 * anchor}", row=row, col=2)
    figure.update_layout(height=max(350, 260 * len(names)), title="Loss × optimizer study (solid: training, dashed: validation)")
    return figure


EVENT_TYPES = (("Pitch_", "pitch"), ("Duration_", "duration"), ("Position_", "position in the bar"))


def event_types(counts: Counter) -> go.Figure:
    """For ``events`` tokens: how often each pitch, each duration and each position in the bar occurs, side by side
    (the tokens of one type in their musical order: low to high, short to long, early to late)."""
    from plotly.subplots import make_subplots

    from seqgen.events import duration_quarters

    order = {"Pitch_": lambda token: int(token[6:]), "Duration_": duration_quarters, "Position_": lambda token: int(token[9:])}
    figure = make_subplots(rows=1, cols=len(EVENT_TYPES), subplot_titles=[title for _, title in EVENT_TYPES])
    for column, (prefix, title) in enumerate(EVENT_TYPES, start=1):
        tokens = sorted((token for token in counts if token.startswith(prefix)), key=order[prefix])
        figure.add_trace(go.Bar(x=[display_token(token) for token in tokens], y=[counts[token] for token in tokens], name=title),
                         row=1, col=column)
    figure.update_layout(title="Events by type", showlegend=False, yaxis_title="occurrences")
    figure.update_xaxes(tickangle=-60)
    return figure
