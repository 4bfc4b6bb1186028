"""Super-resolution data shared by srgan and esrgan: HR images, LR made on the fly, held-out photos.

* `bicubic_downsample`: the LR image of an HR one, by PIL's bicubic resize, which filters with
  the kernel widened by the scale (antialiased) like MATLAB's imresize, the function the SR
  papers use to make their LR images; the two differ in rounding and edge handling only.
* `HRCrops`: random HR crops (size `hr_size`) of a folder of images or of the bundled photos,
  with random horizontal flips and 90-degree rotations (albumentations), each crop's LR made
  from it; the draws come from (seed, epoch, index) (a keyed dataset, common.image2image), so a
  resumed run reads the same crops. Returns (LR in [0, 1], HR in [-1, 1]) as the SRGAN paper
  scales them (Sec. 3.2).
* `PairedCrops`: the same for given LR/HR pairs (`--lr-dir`, e.g. DIV2K's LR_bicubic/X4): an
  LR crop and the HR crop at `scale` times its position, flipped and rotated together.
* `held_out_images`: whole held-out photos cut to a multiple of the scale, for evaluation.
* `evaluation_pairs`, `report`: evaluate.py's measure as the SR papers report it, PSNR and SSIM on
  the Y channel with `scale` border pixels cropped, each model beside bicubic upsampling, and
  crops LR | bicubic | model(s) | HR.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from common import image2image as i2i
from common.data import BUNDLED_PHOTOS, bundled_photos
from common.errors import DataError


def bicubic_downsample(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 HxWxC -> uint8 (H/scale)x(W/scale)xC, antialiased bicubic (PIL). H and W must be
    multiples of `scale`."""
    from PIL import Image

    h, w = image.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"an HR image of {w}x{h} cannot be reduced exactly by {scale}")
    return np.array(Image.fromarray(image).resize((w // scale, h // scale), Image.BICUBIC))  # writable


def bicubic_upsample(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The trivial baseline: BxCxhxw in any range -> Bx Cx(h*scale)x(w*scale) by bicubic
    interpolation (torch's, a = -0.75, as the SR papers' 'bicubic' rows approximate)."""
    import torch.nn.functional as F

    return F.interpolate(lr.float(), scale_factor=scale, mode="bicubic", align_corners=False)


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Cut the bottom and right edges so both sides are multiples of `scale` (the SR convention)."""
    h, w = image.shape[:2]
    return image[:h - h % scale, :w - w % scale]


def to_unit_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC -> float CxHxW in [0, 1] (the LR input's range)."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0  # a writable copy


def to_hr_tensor(image: np.ndarray, unit: bool) -> torch.Tensor:
    """The HR target: [0, 1] when `unit` (ESRGAN's range), else [-1, 1] (SRGAN's, Sec. 3.2)."""
    return to_unit_tensor(image) if unit else i2i.to_tensor(image)


class HRCrops(Dataset):
    """`length` random hr_size crops per epoch of `images` (uint8 HxWx3 arrays, or files read on
    demand), each flipped and rotated by multiples of 90 degrees at random, with its LR made by
    bicubic_downsample. Item i reads image i mod len(images), so every image is used every epoch."""

    keyed = True
    channels = 3

    def __init__(self, images: list, hr_size: int, scale: int, *, length: int | None = None, seed: int = 0,
                 hr_unit: bool = False):
        if hr_size % scale:
            raise DataError(f"the HR crop ({hr_size}) must be a multiple of the scale ({scale})")
        self.images, self.hr_size, self.scale, self.seed, self.hr_unit = images, hr_size, scale, seed, hr_unit
        self.length = length or len(images)
        A = i2i.albumentations()
        self.transform = A.Compose([A.RandomCrop(hr_size, hr_size), A.HorizontalFlip(p=0.5),
                                    A.RandomRotate90(p=1.0)])

    def __len__(self) -> int:
        return self.length

    def read(self, i: int) -> np.ndarray:
        item = self.images[i % len(self.images)]
        image = item if isinstance(item, np.ndarray) else i2i.read_rgb(item)
        h, w = image.shape[:2]
        if min(h, w) < self.hr_size:
            raise DataError(f"{item if not isinstance(item, np.ndarray) else 'an image'} is {w}x{h}, smaller than "
                            f"the HR crop {self.hr_size}x{self.hr_size}: lower --hr-size or remove it")
        return image

    def __getitem__(self, key):
        index, epoch = i2i.split_key(key)
        hr = i2i.augment(self.transform, i2i.item_seed(self.seed, epoch, index), self.read(index))["image"]
        return to_unit_tensor(bicubic_downsample(hr, self.scale)), to_hr_tensor(hr, self.hr_unit)


def lr_partner(hr_file: Path, lr_files: dict[str, Path], scale: int) -> Path | None:
    """The LR file of an HR one: the same stem, or the stem with DIV2K's x<scale> suffix
    (0001.png -> 0001x4.png)."""
    return lr_files.get(hr_file.stem) or lr_files.get(f"{hr_file.stem}x{scale}")


def paired_files(hr_dir: str | Path, lr_dir: str | Path, scale: int) -> list[tuple[Path, Path]]:
    """(LR, HR) file pairs of two folders matched by name; an HR image without its LR partner is
    a one-line DataError (a silently smaller dataset would be worse)."""
    hr_files = i2i.image_files(hr_dir)
    lr_files = {f.stem: f for f in i2i.image_files(lr_dir, "--lr-dir")}
    pairs = []
    for hr in hr_files:
        lr = lr_partner(hr, lr_files, scale)
        if lr is None:
            raise DataError(f"--lr-dir {lr_dir} has no LR image for {hr.name} (looked for {hr.stem}.* and "
                            f"{hr.stem}x{scale}.*)")
        pairs.append((lr, hr))
    return pairs


class PairedCrops(Dataset):
    """Random crops of given LR/HR pairs: an LR crop of hr_size / scale and the HR crop at scale
    times its position, then the same horizontal flip and 90-degree rotation on both
    (albumentations, the LR image as an additional target). HR must be scale times LR in size
    (after cutting HR to a multiple of the scale, as modcrop); a pair that is not is a one-line
    DataError naming the files."""

    keyed = True
    channels = 3

    def __init__(self, pairs: list[tuple[Path, Path]], hr_size: int, scale: int, *, length: int | None = None,
                 seed: int = 0, hr_unit: bool = False):
        if hr_size % scale:
            raise DataError(f"the HR crop ({hr_size}) must be a multiple of the scale ({scale})")
        self.pairs, self.hr_size, self.scale, self.seed, self.hr_unit = pairs, hr_size, scale, seed, hr_unit
        self.length = length or len(pairs)
        A = i2i.albumentations()
        # the two images differ in size by design: shape checks off, the flips and rotations are the same
        self.transform = A.Compose([A.HorizontalFlip(p=0.5), A.RandomRotate90(p=1.0)],
                                   additional_targets={"lr": "image"}, is_check_shapes=False)

    def __len__(self) -> int:
        return self.length

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lr_file, hr_file = self.pairs[i % len(self.pairs)]
        lr, hr = i2i.read_rgb(lr_file), modcrop(i2i.read_rgb(hr_file), self.scale)
        if (hr.shape[0] != lr.shape[0] * self.scale) or (hr.shape[1] != lr.shape[1] * self.scale):
            raise DataError(f"{lr_file} ({lr.shape[1]}x{lr.shape[0]}) is not 1/{self.scale} of {hr_file} "
                            f"({hr.shape[1]}x{hr.shape[0]}): check --lr-dir and --scale")
        if min(hr.shape[:2]) < self.hr_size:
            raise DataError(f"{hr_file} is {hr.shape[1]}x{hr.shape[0]}, smaller than the HR crop "
                            f"{self.hr_size}x{self.hr_size}: lower --hr-size or remove it")
        return lr, hr

    def __getitem__(self, key):
        index, epoch = i2i.split_key(key)
        lr, hr = self.read(index)
        seed = i2i.item_seed(self.seed, epoch, index)
        side = self.hr_size // self.scale
        rng = np.random.default_rng(seed)
        top, left = int(rng.integers(lr.shape[0] - side + 1)), int(rng.integers(lr.shape[1] - side + 1))
        s = self.scale
        lr = lr[top:top + side, left:left + side]
        hr = hr[top * s:(top + side) * s, left * s:(left + side) * s]
        out = i2i.augment(self.transform, seed, hr, lr=lr)
        return to_unit_tensor(out["lr"]), to_hr_tensor(out["image"], self.hr_unit)


def sr_dataset(opt, *, hr_unit: bool = False) -> Dataset:
    """The training set of srgan/esrgan's train.py: `--data photos` (the bundled photos minus the
    held-out ones, --epoch-length crops an epoch), a folder of HR images (LR made by
    bicubic_downsample), or with --lr-dir the given LR/HR pairs."""
    if getattr(opt, "lr_dir", None):
        if opt.data == "photos":
            raise DataError("--lr-dir needs --data: the folder of the HR images that pair with it")
        return PairedCrops(paired_files(opt.data, opt.lr_dir, opt.scale), opt.hr_size, opt.scale, seed=opt.seed,
                           hr_unit=hr_unit)
    if opt.data == "photos":
        return HRCrops(training_photos(), opt.hr_size, opt.scale, length=opt.epoch_length, seed=opt.seed,
                       hr_unit=hr_unit)
    return HRCrops(folder_images(opt.data), opt.hr_size, opt.scale, seed=opt.seed, hr_unit=hr_unit)


def training_photos() -> list[np.ndarray]:
    """The bundled photos minus the held-out ones: the embedded SR training set."""
    return list(bundled_photos([n for n in BUNDLED_PHOTOS if n not in i2i.HELD_OUT_PHOTOS]).values())


def folder_images(root: str | Path) -> list[Path]:
    """A folder of HR images (DIV2K-style); errors name the folder or the file."""
    return i2i.image_files(root)


def held_out_images(scale: int, max_side: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(LR in [0, 1], HR in [-1, 1]) for each held-out photo (common.image2image.HELD_OUT_PHOTOS),
    its sides cut to multiples of the scale; `max_side` first takes a centred crop of at most that
    side (a CPU evaluation budget)."""
    pairs = []
    for photo in bundled_photos(i2i.HELD_OUT_PHOTOS).values():
        if max_side:
            h, w = photo.shape[:2]
            top, left = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
            photo = photo[top:top + max_side, left:left + max_side]
        hr = modcrop(photo, scale)
        pairs.append((to_unit_tensor(bicubic_downsample(hr, scale)), i2i.to_tensor(hr)))
    return pairs


# ------------------------------------------------------------------ evaluation
def evaluation_pairs(data: str | None, scale: int) -> tuple[list, str]:
    """(LR in [0, 1], HR in [-1, 1]) pairs and what they are: the held-out photos (data None or
    'photos'), else every image of the folder `data`, LR made by bicubic_downsample."""
    if data is None or data == "photos":
        return held_out_images(scale), f"held-out photos {', '.join(i2i.HELD_OUT_PHOTOS)}"
    pairs = []
    for f in folder_images(data):
        hr = modcrop(i2i.read_rgb(f), scale)
        pairs.append((to_unit_tensor(bicubic_downsample(hr, scale)), i2i.to_tensor(hr)))
    return pairs, f"{len(pairs)} images of {data}"


def y_report(outputs: list[torch.Tensor], targets: list[torch.Tensor], scale: int) -> dict:
    """Mean PSNR and SSIM on the Y channel with `scale` border pixels cropped, image by image
    (images in [-1, 1])."""
    from common import metrics

    psnr = [metrics.psnr(o.unsqueeze(0), t.unsqueeze(0), y_channel=True, crop_border=scale)
            for o, t in zip(outputs, targets)]
    ssim = [metrics.ssim(o.unsqueeze(0), t.unsqueeze(0), y_channel=True, crop_border=scale)
            for o, t in zip(outputs, targets)]
    return {"psnr_y": sum(psnr) / len(psnr), "ssim_y": sum(ssim) / len(ssim)}


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
    import torch.nn.functional as F

    from common import metrics
    from common.run import save_grid

    targets = [hr for _, hr in pairs]
    bicubic = [(bicubic_upsample(lr.unsqueeze(0), scale)[0] * 2 - 1).clamp(-1, 1) for lr, _ in pairs]
    fields = fields or {}
    records = [{**base, "what": name, **fields.get(name, {}), **y_report(outputs, targets, scale)}
               for name, outputs in models.items()]
    records.append({**base, "what": "bicubic", **y_report(bicubic, targets, scale)})
    for r in records:
        print(f"{r['what']}: PSNR(Y) {r['psnr_y']:.2f} dB  SSIM(Y) {r['ssim_y']:.4f}  [{r.get('images')}, x{scale}]")
        metrics.append_jsonl(jsonl, r)
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


def held_out_evaluator(G: torch.nn.Module, scale: int, device, *, unit_output: bool):
    """train.py's --eval-every measure: evaluate.py's PSNR / SSIM (Y channel, `scale` border) of G
    on the whole held-out photos, with bicubic's beside it. `unit_output`: G gives [0, 1]
    (ESRGAN) rather than [-1, 1] (SRGAN). G runs in eval mode and goes back to its mode after."""
    pairs = held_out_images(scale)
    targets = [hr for _, hr in pairs]
    bicubic = y_report([(bicubic_upsample(lr.unsqueeze(0), scale)[0] * 2 - 1).clamp(-1, 1) for lr, _ in pairs],
                       targets, scale)
    signed = (lambda x: G(x) * 2 - 1) if unit_output else G

    def evaluate() -> dict:
        was = G.training
        G.eval()
        with torch.no_grad():
            outputs = [i2i.translate(signed, lr, 1, device, scale).clamp(-1, 1) for lr, _ in pairs]
        G.train(was)
        got = y_report(outputs, targets, scale)
        return {"psnr": got["psnr_y"], "ssim": got["ssim_y"],
                "pairs": f"held-out photos, Y channel; bicubic {bicubic['psnr_y']:.2f} dB / {bicubic['ssim_y']:.4f}"}

    return evaluate


def held_out_sampler(G: torch.nn.Module, scale: int, hr_size: int, device, *, unit_output: bool):
    """train.py's sample grid: rows bicubic | G | HR of an hr_size crop of each held-out photo,
    in [-1, 1]; G in eval mode (BatchNorm's running statistics), back to its mode after.
    `unit_output`: G gives [0, 1] (ESRGAN) rather than [-1, 1] (SRGAN)."""
    pairs = held_out_images(scale, max_side=hr_size * 2)
    side = hr_size // scale
    lr = torch.stack([lr[:, :side, :side] for lr, _ in pairs])
    hr = torch.stack([hr[:, :hr_size, :hr_size] for _, hr in pairs])
    bicubic = (bicubic_upsample(lr, scale) * 2 - 1).clamp(-1, 1)

    def sample() -> torch.Tensor:
        was = G.training
        G.eval()
        with torch.no_grad():
            out = G(lr.to(device)).float().cpu()
        G.train(was)
        out = (out * 2 - 1 if unit_output else out).clamp(-1, 1)
        return i2i.input_output_target_rows(bicubic, out, hr)

    return sample


def upscale_files(G, scale: int, opt, device) -> Path:
    """generate.py's work: every image of --input (a file or a folder) through G (a callable
    giving [-1, 1]) tile by tile (--tile, --tile-overlap), written to --out; grey, RGBA and
    16-bit files are converted to RGB with a note. Returns where the images went."""
    files = i2i.input_files(opt.input)
    single = Path(opt.input).is_file()
    out = Path(opt.out) if opt.out else (files[0].with_name(f"{files[0].stem}_x{scale}.png") if single
                                         else Path("upscaled"))
    note = i2i.conversion_note(files, opt.input)
    if note:
        print(note)
    for f in files:
        lr = to_unit_tensor(i2i.read_rgb(f))
        sr = i2i.translate_tiled(G, lr, 1, device, tile=opt.tile, overlap=opt.tile_overlap, scale=scale)
        i2i.save_image(sr.clamp(-1, 1), i2i.output_path(f, None if single else Path(opt.input), out))
    print(f"wrote {len(files)} image(s) x{scale} to {out}")
    return out
