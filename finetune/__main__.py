"""``python -m w2v2_onnx_finetune``: the fine-tuning command line."""

import sys

from w2v2_onnx_finetune.cli import main

sys.exit(main())
