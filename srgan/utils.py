"""What only SRGAN needs: starting the GAN stage from a trained SRResNet (Sec. 3.2)."""
from __future__ import annotations

import torch

from common.checkpoint import load_stage_init

MODEL_NAME = "srgan"


def load_init(G: torch.nn.Module, path: str, model_name: str = MODEL_NAME) -> None:
    """The GAN stage's starting point, "to avoid undesired local optima" (Sec. 3.2): G's weights
    from a --stage psnr checkpoint of srgan; anything else is a one-line CheckpointError."""
    load_stage_init(G, path, model_name)
