"""What only ESRGAN's scripts share: reading a generator from our checkpoints or from the official
released weights, the GAN stage's start from the PSNR-oriented model (Sec. 4.1), network
interpolation between the two (Sec. 3.4), the measure as the paper reports it (PSNR / SSIM on
the Y channel with `scale` border pixels cropped, beside bicubic), train.py's held-out samples
and evaluation, and upscaling images of any size tile by tile (generate.py).

The official x4 models (xinntao/ESRGAN: RRDB_PSNR_x4.pth, RRDB_ESRGAN_x4.pth) are plain state
dicts with the same keys as esrgan.model.RRDBNet; they are accepted wherever a checkpoint is, and
their shape (nf, nb, gc, scale) is read from the tensors.

G works on [0, 1] images; on the measuring side images are in [-1, 1] (signed(G)), as in
srgan/utils.py, which holds the same measure and tiling.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.checkpoint import FORMAT_VERSION, check_model_name, load_state_checked, load_tensors
from common.data import conversion_note, input_files, output_path, read_rgb, save_image
from common.errors import CheckpointError, UserError
from common.inference import each_input
from .dataset import held_out_images, to_unit_tensor
from .model import build_generator, interpolate_state

MODEL_NAME = "esrgan"


def is_released_state(obj) -> bool:
    """A plain RRDBNet state dict, as the official code saves and releases it."""
    return isinstance(obj, dict) and "conv_first.weight" in obj and all(torch.is_tensor(v) for v in obj.values())


def released_options(state: dict) -> dict:
    """nf, nb, gc, scale and the channels of a plain RRDBNet state dict, read from its shapes."""
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"RRDB_trunk\.(\d+)\.", k))}
    ups = [k for k in state if re.fullmatch(r"upconv\d+\.weight", k)]
    return {"nf": state["conv_first.weight"].shape[0], "input_channels": state["conv_first.weight"].shape[1],
            "output_channels": state["conv_last.weight"].shape[0], "nb": len(blocks),
            "gc": state["RRDB_trunk.0.RDB1.conv1.weight"].shape[0] if blocks else 32, "scale": 2 ** len(ups),
            "stage": "released"}


def read_generator(path: str) -> tuple[dict, dict, dict]:
    """(G's state dict, options, {"what": a description, "step": the training step or None}) from
    an esrgan checkpoint of either stage or a released RRDBNet state dict; anything else is a
    one-line CheckpointError."""
    payload = load_tensors(path)
    if isinstance(payload, dict) and payload.get("format") == FORMAT_VERSION and "models" in payload:
        check_model_name(payload, MODEL_NAME, path)
        options = payload["options"]
        step = payload.get("step")
        return payload["models"]["G"], options, {"what": f"{options.get('stage')} stage, step {step}", "step": step}
    if is_released_state(payload):
        return payload, released_options(payload), {"what": "released RRDBNet weights", "step": None}
    raise CheckpointError(f"{path} is neither an esrgan checkpoint nor an RRDBNet state dict (the format of the "
                          f"official RRDB_ESRGAN_x4.pth)")


def load_init(G: torch.nn.Module, path: str) -> None:
    """The GAN stage starts from the PSNR-oriented model (Sec. 4.1, "to obtain more visually
    pleasing results" and avoid undesired local optima): an esrgan --stage psnr checkpoint, or
    the released RRDB_PSNR_x4.pth."""
    state, options, _ = read_generator(path)
    if options.get("stage") not in ("psnr", "released"):
        raise CheckpointError(f"--init {path}: not a --stage psnr checkpoint of esrgan (it is the "
                              f"{options.get('stage')} stage)")
    load_state_checked(G, state, what="G", path=path)


def load_generator(device, checkpoint: str | None = None, *, psnr_checkpoint: str | None = None,
                   gan_checkpoint: str | None = None, interp: float | None = None) -> tuple[torch.nn.Module, dict, dict]:
    """G in eval mode on `device`, its options and {"what", "step"}: from one checkpoint, or with
    `interp` = alpha the interpolation (1 - alpha) theta_PSNR + alpha theta_GAN (Sec. 3.4)."""
    if interp is None:
        state, options, info = read_generator(checkpoint)
    else:
        psnr_state, options, _ = read_generator(psnr_checkpoint)
        gan_state, gan_options, _ = read_generator(gan_checkpoint)
        shape = ("nf", "nb", "gc", "scale")
        if [options.get(k) for k in shape] != [gan_options.get(k) for k in shape]:
            raise CheckpointError(f"--psnr-checkpoint and --gan-checkpoint are different networks "
                                  f"({', '.join(f'{k} {options.get(k)}/{gan_options.get(k)}' for k in shape)}): "
                                  f"interpolation blends two trainings of one architecture")
        try:
            state = interpolate_state(psnr_state, gan_state, interp)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from exc
        info = {"what": f"interpolation alpha {interp:g}: {1 - interp:g} x PSNR + {interp:g} x GAN", "step": None}
    G = build_generator(options)
    load_state_checked(G, state, what="G", path=checkpoint or gan_checkpoint)
    return G.to(device).eval(), options, info


# ------------------------------------------------------------------ the measure
def rgb_to_y(images01: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of RGB in [0, 1] (Bx3xHxW -> Bx1xHxW), on the [16/255, 235/255] scale
    of MATLAB's rgb2ycbcr, which the SR papers' PSNR/SSIM code uses."""
    # the same luma as srgan/utils.py
    r, g, b = images01[:, 0:1], images01[:, 1:2], images01[:, 2:3]
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def y_cropped(image: torch.Tensor, scale: int) -> torch.Tensor:
    """A CxHxW image in [-1, 1] as the SR papers measure it: on [0, 1], its Y channel, a border
    of `scale` pixels cut off every side (1x1x(H-2 scale)x(W-2 scale))."""
    x = ((image.float().unsqueeze(0) + 1.0) / 2.0).clamp(0.0, 1.0)
    if x.shape[1] == 3:
        x = rgb_to_y(x)
    return x[..., scale:-scale, scale:-scale]


def psnr_y(output: torch.Tensor, target: torch.Tensor, scale: int) -> float:
    """PSNR (dB) of one image on the Y channel, `scale` border pixels cropped, as the SR papers report it."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(y_cropped(output, scale), y_cropped(target, scale), data_range=1.0,
                                         reduction="none", dim=(1, 2, 3)).mean())


def ssim_y(output: torch.Tensor, target: torch.Tensor, scale: int) -> float:
    """SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5) of one image on the Y channel,
    `scale` border pixels cropped, as the SR papers report it."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return float(structural_similarity_index_measure(y_cropped(output, scale), y_cropped(target, scale),
                                                     data_range=1.0))


def y_report(outputs: list[torch.Tensor], targets: list[torch.Tensor], scale: int) -> dict:
    """Mean PSNR and SSIM on the Y channel with `scale` border pixels cropped, image by image
    (CxHxW images in [-1, 1])."""
    for o, t in zip(outputs, targets):
        if o.shape != t.shape:
            raise ValueError(f"paired metrics need equal shapes, got {tuple(o.shape)} and {tuple(t.shape)}")
    psnr = [psnr_y(o, t, scale) for o, t in zip(outputs, targets)]
    ssim = [ssim_y(o, t, scale) for o, t in zip(outputs, targets)]
    return {"psnr_y": sum(psnr) / len(psnr), "ssim_y": sum(ssim) / len(ssim)}


def bicubic_upsample(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The trivial baseline: BxCxhxw in any range -> BxCx(h*scale)x(w*scale) by bicubic
    interpolation (torch's, a = -0.75, as the SR papers' 'bicubic' rows approximate)."""
    return F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False)


def signed_bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """bicubic_upsample of a BxCxhxw LR batch in [0, 1], on [-1, 1] like G's output."""
    return (bicubic_upsample(lr, scale) * 2 - 1).clamp(-1, 1)


# ------------------------------------------------------------------ any image size
@torch.no_grad()
def upscale(G, lr: torch.Tensor, device) -> torch.Tensor:
    """G on one CxHxW LR image of any size (G is fully convolutional), as fp32 on the CPU."""
    return G(lr.unsqueeze(0).to(device)).float().cpu()[0]


@torch.no_grad()
def upscale_tiled(G, lr: torch.Tensor, device, *, tile: int, overlap: int, scale: int) -> torch.Tensor:
    """upscale(), tile by tile, so memory stays bounded for any image size.

    The LR image is cut into cores of (tile - 2 * overlap) pixels; each core is run with `overlap`
    pixels of real image context on every side (less at the image's own borders) and only the
    core of the output is kept. For a network whose receptive field reaches at most `overlap`
    pixels from an output pixel and that has no image-wide operation (RRDBNet has no
    normalisation at all, Sec. 3.1), the result equals the untiled one: there are no seams to
    hide, so no blending. RRDBNet's receptive field is hundreds of pixels wide in theory, but its
    weights fall off fast: with generate.py's default overlap the difference is far below one
    grey level."""
    # the same tiling as srgan/utils.py
    core = tile - 2 * overlap
    if core <= 0:
        raise UserError(f"--tile {tile} must be larger than twice the overlap ({overlap})")
    _, h, w = lr.shape
    if h <= tile and w <= tile:
        return upscale(G, lr, device)
    out = None
    corners = [(top, left) for top in range(0, h, core) for left in range(0, w, core)]
    for top, left in tqdm(corners, desc="tiles", unit="tile", leave=False, disable=len(corners) < 4,
                          dynamic_ncols=True, file=sys.stderr):  # a 12-megapixel photo is minutes of work
        t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
        t1, l1 = min(top + core + overlap, h), min(left + core + overlap, w)
        y = upscale(G, lr[:, t0:t1, l0:l1], device)
        if out is None:
            out = y.new_zeros(y.shape[0], h * scale, w * scale)
        b, r = min(top + core, h), min(left + core, w)
        out[:, top * scale:b * scale, left * scale:r * scale] = \
            y[:, (top - t0) * scale:(b - t0) * scale, (left - l0) * scale:(r - l0) * scale]
    return out


# ------------------------------------------------------------------ evaluate.py and generate.py
def centre(image: torch.Tensor, side: int) -> torch.Tensor:
    """The centred side x side crop of a ...xHxW tensor."""
    h, w = image.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[..., top:top + side, left:left + side]


def report(models: dict[str, list[torch.Tensor]], pairs: list, scale: int, base: dict, jsonl: str | Path,
           crops: str | Path | None = None, crop_side: int = 96, fields: dict[str, dict] | None = None) -> list[dict]:
    """Print and append to `jsonl` one record per model (outputs in [-1, 1], one per pair; with
    that model's `fields`, e.g. its stage) and one for bicubic upsampling, the trivial baseline;
    with `crops`, a PNG whose rows are LR (nearest) | bicubic | each model | HR, centre crops."""
    # the same report as srgan/utils.py
    from common.metrics import append_jsonl
    from common.run import save_grid

    targets = [hr for _, hr in pairs]
    bicubic = [signed_bicubic(lr.unsqueeze(0), scale)[0] for lr, _ in pairs]
    fields = fields or {}
    records = [{**base, "what": name, **fields.get(name, {}), **y_report(outputs, targets, scale)}
               for name, outputs in models.items()]
    records.append({**base, "what": "bicubic", **y_report(bicubic, targets, scale)})
    for r in records:
        print(f"{r['what']}: PSNR(Y) {r['psnr_y']:.2f} dB  SSIM(Y) {r['ssim_y']:.4f}  [{r.get('images')}, x{scale}]")
        append_jsonl(jsonl, r)
    print(f"appended to {jsonl}")
    if crops:
        rows = []
        for i, (lr, hr) in enumerate(pairs):
            nearest = F.interpolate(lr.unsqueeze(0), scale_factor=scale, mode="nearest")[0] * 2 - 1
            columns = [nearest, bicubic[i], *(outputs[i] for outputs in models.values()), hr]
            rows += [centre(x, crop_side) for x in columns]
        save_grid(torch.stack(rows), crops, nrow=len(models) + 3)
        print(f"wrote {crops}: rows LR (nearest) | bicubic | {' | '.join(models)} | HR")
    return records


def upscale_files(G, scale: int, opt, device) -> Path:
    """generate.py's work: every image of --input (a file or a folder) through G (a callable
    giving [-1, 1]) tile by tile (--tile, --tile-overlap), written to --out; grey, RGBA and
    16-bit files are converted to RGB with a note. Returns where the images went."""
    files = input_files(opt.input)
    single = Path(opt.input).is_file()
    out = Path(opt.out) if opt.out else (files[0].with_name(f"{files[0].stem}_x{scale}.png") if single
                                         else Path("upscaled"))
    note = conversion_note(files, opt.input)
    if note:
        print(note)

    def upscale_one(f: Path) -> Path:
        lr = to_unit_tensor(read_rgb(f))
        sr = upscale_tiled(G, lr, device, tile=opt.tile, overlap=opt.tile_overlap, scale=scale)
        return save_image(sr.clamp(-1, 1), output_path(f, None if single else Path(opt.input), out))

    each_input(files, upscale_one, out=out)
    print(f"wrote {len(files)} image(s) x{scale} to {out}")
    return out


# ------------------------------------------------------------------ train.py's samples and --eval-every
def signed(G):
    """G, which works in [0, 1] (as the official code), giving [-1, 1] for the measure and the
    image writer."""
    return lambda x: G(x) * 2 - 1


def held_out_evaluator(G: torch.nn.Module, scale: int, device):
    """train.py's --eval-every measure: evaluate.py's PSNR / SSIM (Y channel, `scale` border) of G
    on the whole held-out photos, with bicubic's beside it. G runs in eval mode and goes back to
    its mode after."""
    pairs = held_out_images(scale)
    targets = [hr for _, hr in pairs]
    bicubic = y_report([signed_bicubic(lr.unsqueeze(0), scale)[0] for lr, _ in pairs], targets, scale)

    def evaluate() -> dict:
        was = G.training
        G.eval()
        outputs = [upscale(signed(G), lr, device).clamp(-1, 1) for lr, _ in pairs]
        G.train(was)
        got = y_report(outputs, targets, scale)
        return {"psnr": got["psnr_y"], "ssim": got["ssim_y"],
                "pairs": f"held-out photos, Y channel; bicubic {bicubic['psnr_y']:.2f} dB / {bicubic['ssim_y']:.4f}"}

    return evaluate


def held_out_sampler(G: torch.nn.Module, scale: int, hr_size: int, device):
    """train.py's sample grid: rows bicubic | G | HR of an hr_size crop of each held-out photo,
    in [-1, 1]; G in eval mode, back to its mode after."""
    pairs = held_out_images(scale, max_side=hr_size * 2)
    side = hr_size // scale
    lr = torch.stack([lr[:, :side, :side] for lr, _ in pairs])
    hr = torch.stack([hr[:, :hr_size, :hr_size] for _, hr in pairs])
    bicubic = signed_bicubic(lr, scale)

    def sample() -> torch.Tensor:
        was = G.training
        G.eval()
        with torch.no_grad():
            out = G(lr.to(device)).float().cpu()
        out = (out * 2 - 1).clamp(-1, 1)
        G.train(was)
        return torch.stack([bicubic, out, hr], dim=1).flatten(0, 1)  # rows of three: bicubic | G | HR

    return sample
