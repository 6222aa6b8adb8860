"""Test configuration: the package is imported before TensorFlow, as it is by users.

`import textpredict` chooses TensorFlow's kernels (TF_ENABLE_ONEDNN_OPTS) before
TensorFlow loads; test modules import TensorFlow first, so without this the suite
would run on other kernels than the command line does.
"""

import textpredict  # noqa: F401
