"""seqgen: learn, train and play with recurrent sequence models for music and lyrics."""

import os

# Quiet TensorFlow's C++ logging before any module imports it (GUIDE §3).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from seqgen.errors import SeqgenError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["SeqgenError", "__version__"]
