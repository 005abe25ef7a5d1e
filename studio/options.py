"""The studio's command-line options (``seqgen studio``, ``python -m studio``, ``python app.py``).

Kept apart from :mod:`studio.app`, which imports Gradio and builds the page
(seconds): ``--help`` and a bad option answer before either happens.
"""

from __future__ import annotations

import argparse
import os

DEFAULT_MAX_FILE_SIZE = "50mb"
AUTH_ENV = "SEQGEN_AUTH"


def credentials(text: str | None) -> tuple[str, str] | None:
    """``user:password`` as Gradio's ``auth`` pair; blank gives None (no login)."""
    if not text:
        return None
    user, colon, password = text.partition(":")
    if not (colon and user and password):
        raise SystemExit(f"--auth (or ${AUTH_ENV}) must be user:password, with neither part empty.")
    return user, password


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="seqgen studio", description="Launch the seqgen studio (a Gradio web app).")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
                        help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860),
                        help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    parser.add_argument("--max-file-size", default=os.environ.get("SEQGEN_MAX_FILE_SIZE") or DEFAULT_MAX_FILE_SIZE,
                        help=f"largest upload, e.g. 50mb or 1gb (default: $SEQGEN_MAX_FILE_SIZE or {DEFAULT_MAX_FILE_SIZE})")
    parser.add_argument("--auth", default=os.environ.get(AUTH_ENV), metavar="USER:PASSWORD",
                        help=f"ask for this login on the page and the API (default: ${AUTH_ENV}); use it with --share or 0.0.0.0")
    return parser.parse_args(argv)
