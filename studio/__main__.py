"""``python -m studio [options]`` (and ``seqgen studio``): launch the studio."""

from studio.options import parse_args

options = parse_args()  # --help and bad options answer before Gradio is imported
from studio.app import main  # noqa: E402

main(options)
