"""What only CycleGAN needs: the history of generated images the discriminators train on
(Sec. 4 "Training details", after Shrivastava et al. 2017)."""
from __future__ import annotations

import torch

from common.checkpoint import load_for_inference, load_state_checked
from common.errors import CheckpointError
from .model import build_generator

MODEL_NAME = "cyclegan"
GENERATORS = {"AtoB": "G_AB", "BtoA": "G_BA"}  # --direction: the paper's G and F


class ImagePool:
    """A buffer of the last `capacity` generated images of one domain (50 in the paper).

    Sec. 4: "we update the discriminators using a history of generated images rather than the
    ones produced by the latest generators", which damps oscillation. For each image of a
    batch (the rule of the official code):
      * while fewer than `capacity` images are stored: store it and hand it back;
      * then, with probability 1/2: hand back a stored image picked uniformly at random
        and store the new one in its slot; otherwise hand back the new image itself.
    The draws come from torch's global generator, whose state every checkpoint holds, and the
    stored images are in the checkpoint too (state_dict), so a resumed run repeats exactly.
    capacity 0 turns the pool off (every image is handed back as it is).
    """

    def __init__(self, capacity: int = 50):
        self.capacity = capacity
        self.images: list[torch.Tensor] = []  # each CxHxW, detached

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """The batch D should see in place of `images` (BxCxHxW), in `images`' memory format."""
        if self.capacity == 0:
            return images.detach()
        out = []
        for image in images.detach():
            if len(self.images) < self.capacity:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                slot = int(torch.randint(self.capacity, ()))
                out.append(self.images[slot].to(image.device, image.dtype))
                self.images[slot] = image.clone()
            else:
                out.append(image)
        batch = torch.stack(out)
        if images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last) \
                and not images.is_contiguous():
            batch = batch.contiguous(memory_format=torch.channels_last)  # what D was given before
        return batch

    def state_dict(self) -> dict:
        stored = torch.stack([i.float().cpu().contiguous() for i in self.images]) if self.images \
            else torch.zeros(0)
        return {"capacity": self.capacity, "images": stored}

    def load_state_dict(self, state: dict) -> None:
        if int(state["capacity"]) != self.capacity:
            from common.errors import CheckpointError

            raise CheckpointError(f"the checkpoint's image pool holds {int(state['capacity'])} images, "
                                  f"this run asks for {self.capacity} (--pool-size)")
        self.images = [image.clone() for image in state["images"]] if state["images"].numel() else []


# ------------------------------------------------------------------ seeing and measuring
@torch.no_grad()
def grid_rows(G_AB, G_BA, real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
    """The training grid: one row per example, real A | fake B | rec A | real B | fake A | rec B
    (six columns). InstanceNorm without running statistics behaves the same in train and
    eval mode, and nothing here draws random numbers, so sampling never changes the run."""
    fake_b, fake_a = G_AB(real_a), G_BA(real_b)
    rec_a, rec_b = G_BA(fake_b), G_AB(fake_a)
    columns = [real_a, fake_b, rec_a, real_b, fake_a, rec_b]
    return torch.stack([c.float().cpu() for c in columns], dim=1).flatten(0, 1)


@torch.no_grad()
def translate_batches(G, images: torch.Tensor, device, batch_size: int = 16) -> torch.Tensor:
    """G over a stack of equally sized images, chunk by chunk, as fp32 on the CPU."""
    return torch.cat([G(chunk.to(device)).float().cpu() for chunk in images.split(batch_size)])


def translation_report(G_AB, G_BA, evaluation: dict, device) -> list[dict]:
    """L1 / PSNR / SSIM rows (common.image2image.paired_report) for an evaluation set
    (cyclegan.dataset.evaluation_set). With a known target T(a) (embedded data):
      translation  G_AB(a) vs T(a)       how well G_AB found the hidden mapping
      identity     a vs T(a)             the baseline: do nothing
      cycle_A      G_BA(G_AB(a)) vs a    cycle consistency (eq. 2)
    Without one (a folder): only the cycle errors, A -> B -> A and B -> A -> B."""
    from common.image2image import paired_report

    a, target, b = evaluation["a"], evaluation.get("target"), evaluation.get("b")
    fake_b = translate_batches(G_AB, a, device)
    rows = []
    if target is not None:
        rows.append({"key": "translation", "what": "G_AB(a) vs T(a)", **paired_report(fake_b, target)})
        rows.append({"key": "identity", "what": "a vs T(a) (identity baseline)", **paired_report(a, target)})
    rows.append({"key": "cycle_A", "what": "G_BA(G_AB(a)) vs a (cycle)",
                 **paired_report(translate_batches(G_BA, fake_b, device), a)})
    if target is None and b is not None:
        fake_a = translate_batches(G_BA, b, device)
        rows.append({"key": "cycle_B", "what": "G_AB(G_BA(b)) vs b (cycle)",
                     **paired_report(translate_batches(G_AB, fake_a, device), b)})
    n = {"n": int(a.shape[0]), "source": evaluation["source"]}
    return [{**r, **n} for r in rows]


def load_generator(path, direction: str, device, payload: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """G_AB (AtoB) or G_BA (BtoA) rebuilt from the checkpoint's options, in eval mode."""
    payload = payload or load_for_inference(path, MODEL_NAME)
    name = GENERATORS[direction]
    try:
        G = build_generator(payload["options"])
    except KeyError as exc:
        raise CheckpointError(f"{path}: options lack {exc}, needed to rebuild the generator") from exc
    if name not in payload["models"]:
        raise CheckpointError(f"{path} holds no weights for {name}")
    load_state_checked(G, payload["models"][name], what=name, path=path)
    return G.to(device).eval(), payload["options"]
