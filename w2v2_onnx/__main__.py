"""``python -m w2v2_onnx``: the same as the ``w2v2-onnx`` command."""

import sys

from w2v2_onnx.cli import main

sys.exit(main())
