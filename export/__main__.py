"""``python -m w2v2_onnx_export CHECKPOINT OUT_DIR``."""

import sys

from w2v2_onnx_export.cli import main

sys.exit(main())
