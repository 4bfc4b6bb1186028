"""The suite's CUDA cases: skipped without a GPU, run by benchmarks/gpu_check.sh where one is
lent (`pytest -m cuda`). Each trains a tiny model end to end through a folder's train.py."""
from __future__ import annotations

import pytest
import torch

from common.checkpoint import load_file

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

TINY = ["--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--device", "cuda",
        "--log-every", "1", "--sample-every", "100", "--save-every", "100"]


def train(folder: str, args: list[str]):
    import importlib

    module = importlib.import_module(f"{folder}.train")
    return module.main(module.parse_opt(TINY + args))


def finite_weights(path) -> bool:
    payload = load_file(path)
    return all(torch.isfinite(v).all() for net in payload["models"].values() for v in net.values()
               if torch.is_tensor(v) and v.is_floating_point())  # not a module's extra state (progan's stage)


@pytest.mark.parametrize("folder", ["wgan_gp", "cgan"])
def test_fp16_with_the_gradient_penalty_trains(folder, tmp_path):
    """fp16 + GradScaler + gradient penalty, the combination that stopped at step 1 with a NaN."""
    extra = ["--embed-size", "8"] if folder == "cgan" else []
    out = train(folder, ["--precision", "fp16", "--max-steps", "30", "--n-critic", "2", "--out", str(tmp_path / "r"),
                         *extra])
    assert load_file(out / "checkpoints/last.pt")["step"] == 30 and finite_weights(out / "checkpoints/last.pt")


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_progan_grows_through_every_phase_on_the_gpu(precision, tmp_path):
    """4x4 -> 16x16 with fades, the penalty, the drift term and the EMA, in fp16 (GradScaler) and bf16."""
    from progan import train as pg_train

    out = pg_train.main(pg_train.parse_opt([
        "--max-resolution", "16", "--phase-images", "64", "--batch-size", "8", "--nz", "32", "--fmap-base", "128",
        "--fmap-max", "64", "--device", "cuda", "--precision", precision, "--sample-every", "100",
        "--save-every", "100", "--out", str(tmp_path / "r")]))
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["step"] == 40 and payload["models"]["G"]["_extra_state"]["resolution"] == 16
    assert finite_weights(out / "checkpoints/last.pt")


@pytest.mark.parametrize("precision, channels_last", [("bf16", True), ("fp32", True), ("fp32", False)])
def test_dcgan_trains_in_each_mode(precision, channels_last, tmp_path):
    flag = "--channels-last" if channels_last else "--no-channels-last"
    out = train("dcgan", ["--precision", precision, flag, "--max-steps", "10", "--out", str(tmp_path / "r")])
    assert finite_weights(out / "checkpoints/last.pt")


@pytest.mark.parametrize("folder", ["dcgan", "wgan_gp"])
def test_resume_is_exact_on_the_gpu_with_deterministic(folder, tmp_path):
    """--deterministic: 4 steps in one run equal 2 steps, a stop, a resume and 2 more, bit for bit."""
    args = ["--precision", "fp32", "--deterministic", "--seed", "3"]
    train(folder, args + ["--max-steps", "4", "--out", str(tmp_path / "a")])
    train(folder, args + ["--max-steps", "2", "--out", str(tmp_path / "b")])
    train(folder, args + ["--max-steps", "4", "--out", str(tmp_path / "b"), "--resume", "auto"])
    a, b = (load_file(tmp_path / run / "checkpoints/last.pt")["models"] for run in ("a", "b"))
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs after resume"


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_pix2pix_steps_on_the_gpu(precision):
    """pix2pix's step (eq. 1 halved, eq. 4) with the fused Adam, channels_last, fp16 + GradScaler or bf16."""
    from common.device import Precision, adam
    from pix2pix.model import build_discriminator, build_generator, init_weights
    from pix2pix.train import train_step

    device = torch.device("cuda")
    options = {"netG": "unet", "netD": "patch70", "ngf": 16, "ndf": 16, "image_size": 64}
    G = build_generator(options).apply(init_weights).to(device, memory_format=torch.channels_last)
    D = build_discriminator(options).apply(init_weights).to(device, memory_format=torch.channels_last)
    opt_g, opt_d = adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999)), adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    prec = Precision(precision, device)
    x, y = (torch.rand(2, 3, 64, 64, device=device).contiguous(memory_format=torch.channels_last) for _ in range(2))
    before = G.encoder[0][0].weight.detach().clone()
    for _ in range(5):
        losses = train_step(G, D, opt_g, opt_d, x, y, prec)
    assert all(torch.isfinite(v) for v in losses.values())
    assert not torch.equal(before, G.encoder[0][0].weight)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_super_resolution_gan_steps_on_the_gpu(precision):
    """SRGAN's and ESRGAN's GAN-stage steps (VGG content / perceptual loss through the frozen D)
    with channels_last, fp16 + GradScaler or bf16, at small widths."""
    from common.device import Precision, adam
    from common.vgg import vgg19_features
    from esrgan import train as es_train
    from esrgan.model import RRDBNet, VGGDiscriminator128
    from srgan import train as sr_train
    from srgan.model import Discriminator, SRResNet

    device, cl = torch.device("cuda"), torch.channels_last
    prec = Precision(precision, device)
    lr = torch.rand(2, 3, 32, 32, device=device).contiguous(memory_format=cl)
    hr = torch.rand(2, 3, 128, 128, device=device).contiguous(memory_format=cl)
    vgg = vgg19_features("conv5_4", random_init=True, input_range=(0.0, 1.0)).to(device, memory_format=cl)
    runs = {
        "srgan": (SRResNet(3, 16, 2, 4), Discriminator(3, 16, 128),
                  lambda G, D, og, od: sr_train.gan_step(G, D, og, od, lr, hr * 2 - 1, prec,
                                                         lambda a, b: sr_train.vgg_content_loss(vgg, a, b))),
        "esrgan": (RRDBNet(nf=16, nb=1, gc=8), VGGDiscriminator128(ndf=16),
                   lambda G, D, og, od: es_train.gan_step(G, D, og, od, lr, hr, prec,
                                                          lambda a, b: es_train.perceptual_loss(vgg, a, b),
                                                          (1.0, 5e-3, 1e-2))),
    }
    for name, (G, D, step) in runs.items():
        G, D = G.to(device, memory_format=cl), D.to(device, memory_format=cl)
        og, od = adam(G.parameters(), lr=1e-4, betas=(0.9, 0.999)), adam(D.parameters(), lr=1e-4, betas=(0.9, 0.999))
        before = next(G.parameters()).detach().clone()
        for _ in range(3):
            losses = step(G, D, og, od)
        assert all(torch.isfinite(v) for v in losses.values()), name
        assert not torch.equal(before, next(G.parameters())), name


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_pix2pixhd_local_enhancer_steps_on_the_gpu(precision):
    """pix2pixHD's step with G1 + a local enhancer, the Sec. 3.4 encoder, 3 discriminators, feature
    matching and the VGG loss (random VGG), channels_last, fp16 + GradScaler or bf16, small widths."""
    from common.device import Precision, adam
    from common.vgg import vgg19_features
    from pix2pixhd.model import encode_input
    from pix2pixhd.model import build_discriminator, build_encoder, build_generator
    from pix2pixhd.train import train_step

    device, cl = torch.device("cuda"), torch.channels_last
    options = {"label_nc": 8, "ngf": 8, "ndf": 8, "n_local_enhancers": 1, "n_blocks_global": 2, "instance_feat": True,
               "nef": 4, "num_D": 3}
    G, D, E = (build(options).to(device, memory_format=cl)
               for build in (build_generator, build_discriminator, build_encoder))
    vgg = vgg19_features("relu5_1", random_init=True).to(device, memory_format=cl)
    opt_g = adam([*G.parameters(), *E.parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_d = adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    label = torch.randint(8, (2, 64, 128)).repeat_interleave(2, 1).repeat_interleave(2, 2)[:, :64, :128]
    inst = label * 1000
    label_map = encode_input(label, inst, 8, True).to(device).contiguous(memory_format=cl)
    real = (torch.rand(2, 3, 64, 128, device=device) * 2 - 1).contiguous(memory_format=cl)
    prec = Precision(precision, device)
    before = next(G.parameters()).detach().clone()
    for _ in range(5):
        losses = train_step(G, D, E, opt_g, opt_d, label_map, inst.to(device), real, prec, vgg=vgg)
    assert all(torch.isfinite(v) for v in losses.values())
    assert not torch.equal(before, next(G.parameters()))
