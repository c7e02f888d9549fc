"""posedistill: fast single-person 2D human pose estimation by Fast Pose Distillation (FPD).

Zhang, Zhu, Ye, "Fast Human Pose Estimation", CVPR 2019: a large stacked-Hourglass teacher is distilled into a
small Hourglass student, which alone is deployed.
"""

__version__ = "0.1.0"

from .errors import CheckpointError, ConfigError, DataError, PosedistillError  # noqa: E402
from .models import build_model, list_models  # noqa: E402
from .inference.predictor import Predictor  # noqa: E402

__all__ = ["__version__", "build_model", "list_models", "PosedistillError", "ConfigError", "DataError",
           "CheckpointError"]
