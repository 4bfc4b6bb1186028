"""What only SRGAN needs: starting the GAN stage from a trained SRResNet (Sec. 3.2)."""
from __future__ import annotations

import torch

from common.checkpoint import load_file, load_state_checked
from common.errors import CheckpointError


def load_init(G: torch.nn.Module, path: str, model_name: str = "srgan") -> None:
    """The GAN stage's starting point, "to avoid undesired local optima" (Sec. 3.2): G's weights
    from a --stage psnr checkpoint of srgan; anything else is a one-line CheckpointError."""
    payload = load_file(path)
    if payload.get("model_name") != model_name or payload.get("options", {}).get("stage") != "psnr":
        raise CheckpointError(f"--init {path}: not a --stage psnr checkpoint of srgan")
    load_state_checked(G, payload["models"]["G"], what="G", path=path)
