"""Plotly figures for corpus exploration, ready for the studio and for notebooks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import plotly.graph_objects as go


def count_plot(counts: Counter, max_tokens: int = 300) -> go.Figure:
    """The reference's count plot: one bar per token, most frequent first."""
    ranked = counts.most_common(max_tokens)
    figure = go.Figure(go.Bar(x=[token for token, _ in ranked], y=[count for _, count in ranked]))
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


def top_tokens(counts: Counter, top: int = 20) -> go.Figure:
    """Horizontal bars of the ``top`` most frequent tokens."""
    ranked = counts.most_common(top)[::-1]
    figure = go.Figure(go.Bar(x=[count for _, count in ranked], y=[repr(token) if token.isspace() else token for token, _ in ranked], orientation="h"))
    figure.update_layout(title=f"Top {len(ranked)} tokens", xaxis_title="occurrences", yaxis_title="token")
    return figure


def char_frequencies(counts: Counter) -> go.Figure:
    """Bar chart of every character's count, with space and newline named."""
    names = {" ": "space", "\n": "newline", "\t": "tab"}
    ranked = counts.most_common()
    figure = go.Figure(go.Bar(x=[names.get(char, char) for char, _ in ranked], y=[count for _, count in ranked]))
    figure.update_layout(title="Character frequencies", xaxis_title="character", yaxis_title="occurrences")
    return figure
