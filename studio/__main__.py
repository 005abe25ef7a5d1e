"""``python -m studio [options]`` (and ``seqgen studio``): launch the studio."""

from studio.app import main

main()
