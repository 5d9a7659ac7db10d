"""Builds the optional C frame loop of the beam search; everything else is configured in pyproject.toml.

The extension is optional: without a C compiler the install still succeeds and the pure-Python loop (same
output, slower) runs instead. Set W2V2_ONNX_NO_EXTENSION=1 to skip it on purpose.
"""

import os
import sys

from setuptools import Extension, setup

if sys.platform == "win32":
    compile_args = ["/O2", "/fp:precise"]
else:
    # No fused multiply-add contraction: the C loop must round exactly as the Python one does.
    compile_args = ["-O2", "-ffp-contract=off", "-fno-fast-math"]

extensions = []
if not os.environ.get("W2V2_ONNX_NO_EXTENSION"):
    extensions.append(Extension("w2v2_onnx._beam_native", sources=["w2v2_onnx/_beam_native.c"],
                                extra_compile_args=compile_args, optional=True))

setup(ext_modules=extensions)
