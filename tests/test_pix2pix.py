"""pix2pix: architecture against the paper's appendix and the official code's counts, the
objective, one step, end to end, exact resume, generate, evaluate, paired data, bad input."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from common.checkpoint import load_file
from common.data import augment, to_tensor
from common.device import Precision
from common.errors import DataError
from pix2pix import generate as p2p_generate
from pix2pix import train as p2p_train
from pix2pix.dataset import (EmbeddedPairs, PairedFolder, as_images, edges, held_out_pairs, jitter, lab_pair,
                              lab_to_rgb)
from pix2pix.model import (NET_D, PatchDiscriminator, PixelDiscriminator, UNetGenerator, build_discriminator,
                           init_weights)
from pix2pix.utils import (input_output_target_rows, pad_to_multiple, paired_report, paper_test_mode,
                           run_generator)
from tests.helpers import assert_one_line_error, in_process, run_script

TINY = ["--image-size", "32", "--load-size", "36", "--ngf", "8", "--ndf", "8", "--precision", "fp32",
        "--device", "cpu", "--log-every", "1", "--epoch-length", "6"]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def block_params(blocks) -> list[int]:
    return [n_params(b) for b in blocks]


# ------------------------------------------------------------- architecture
# The paper's configuration (256x256, 3 -> 3 channels, 64 filters), layer by layer, as the
# official code (junyanz/pytorch-CycleGAN-and-pix2pix, unet_256 + basic D, BatchNorm) builds it:
# 4x4 convolutions without bias before a BatchNorm (2 parameters per channel); the outermost
# up-convolution has a bias and no BatchNorm.
UNET_256_ENCODER = [
    3 * 64 * 16,                     # C64: no BatchNorm (Appendix 6.1.1), no bias
    64 * 128 * 16 + 2 * 128,         # C128
    128 * 256 * 16 + 2 * 256,        # C256
    256 * 512 * 16 + 2 * 512,        # C512
    512 * 512 * 16 + 2 * 512,        # C512
    512 * 512 * 16 + 2 * 512,        # C512
    512 * 512 * 16 + 2 * 512,        # C512
    512 * 512 * 16,                  # C512 at 1x1: no BatchNorm (official code)
]
UNET_256_DECODER = [
    512 * 512 * 16 + 2 * 512,        # CD512
    1024 * 512 * 16 + 2 * 512,       # CD1024 (input: 512 + the 512 skip)
    1024 * 512 * 16 + 2 * 512,       # CD1024
    1024 * 512 * 16 + 2 * 512,       # C1024
    1024 * 256 * 16 + 2 * 256,       # C1024 -> 256
    512 * 128 * 16 + 2 * 128,        # C512 -> 128
    256 * 64 * 16 + 2 * 64,          # C256 -> 64
    128 * 3 * 16 + 3,                # C128 -> 3 channels, bias, Tanh
]
PATCH70 = [6 * 64 * 16 + 64,         # C64 on the 6-channel (input, output) pair: bias, no BatchNorm
           64 * 128 * 16 + 2 * 128,  # C128
           128 * 256 * 16 + 2 * 256,  # C256
           256 * 512 * 16 + 2 * 512,  # C512, stride 1
           512 * 1 * 16 + 1]          # one logit per patch


def test_paper_unet_matches_the_appendix_and_the_official_count():
    G = UNetGenerator(3, 3, ngf=64, image_size=256)
    assert block_params(G.encoder) == UNET_256_ENCODER
    assert block_params(G.decoder) == UNET_256_DECODER
    assert n_params(G) == sum(UNET_256_ENCODER + UNET_256_DECODER) == 54_413_955  # official: "54.414 M"


def test_paper_patchgan_matches_the_official_count_and_gives_a_30x30_map():
    D = PatchDiscriminator(6, 64, n_layers=3)
    convs = [m for m in D.net if isinstance(m, nn.Conv2d)]
    norms = [m for m in D.net if isinstance(m, nn.BatchNorm2d)]
    assert [n_params(c) for c in convs] == [6 * 64 * 16 + 64, 64 * 128 * 16, 128 * 256 * 16, 256 * 512 * 16, 512 * 16 + 1]
    assert sum(n_params(c) for c in convs) + sum(n_params(b) for b in norms) == sum(PATCH70) == n_params(D) == 2_768_705
    assert D(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)


def test_unet_output_shapes_and_encoder_decoder_ablation():
    x = torch.randn(1, 3, 256, 256)
    assert UNetGenerator(ngf=8, image_size=256)(x).shape == (1, 3, 256, 256)  # shapes at a small width
    ed = UNetGenerator(image_size=256, skips=False)
    # without skips each decoder layer reads only the previous one: 512 in (not 1024) down the middle
    assert block_params(ed.decoder) == [512 * 512 * 16 + 1024] * 4 + [512 * 256 * 16 + 512, 256 * 128 * 16 + 256,
                                                                     128 * 64 * 16 + 128, 64 * 3 * 16 + 3]
    assert UNetGenerator(ngf=8, image_size=256, skips=False)(x).shape == (1, 3, 256, 256)
    assert len(UNetGenerator(image_size=128).encoder) == 7  # unet_128: 7 downsamplings
    with pytest.raises(ValueError):
        UNetGenerator(image_size=96)


def test_dropout_only_in_the_first_three_decoder_layers_and_leaky_encoder():
    G = UNetGenerator(ngf=8, image_size=64)
    has_dropout = [any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in b) for b in G.decoder]
    assert has_dropout == [True, True, True, False, False, False]
    assert all(isinstance(b[0], nn.LeakyReLU) and b[0].negative_slope == 0.2 for b in G.encoder[1:])
    assert not any(isinstance(m, nn.LeakyReLU) for m in G.decoder.modules())
    assert isinstance(G.decoder[-1][-1], nn.Tanh)


def receptive_field(D: nn.Module, size: int = 128) -> int:
    """Side of the input region that moves D's central output (measured by a gradient)."""
    D.eval()
    x = torch.randn(1, 6, size, size, requires_grad=True)
    out = D(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = (x.grad.abs().sum(dim=(0, 1, 3)) > 0).nonzero()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("net, field", [("pixel", 1), ("patch16", 16), ("patch70", 70)])
def test_discriminator_receptive_fields_are_table_3s(net, field):
    D = build_discriminator({"netD": net, "ndf": 4})
    D.apply(init_weights)
    assert receptive_field(D) == field


def test_image_gan_field_is_286_and_pixel_gan_counts():
    D = build_discriminator({"netD": "image", "ndf": 4})
    assert receptive_field(D, 512) == 286  # larger than a 256 image: the "ImageGAN" of Table 3
    assert n_params(PixelDiscriminator(6, 64)) == 6 * 64 + 64 + 64 * 128 + 2 * 128 + 128
    assert set(NET_D) == {"pixel", "patch16", "patch70", "image"}


def test_init_is_gaussian_002():
    G = UNetGenerator(ngf=16, image_size=256)
    G.apply(init_weights)
    w = G.decoder[1][1].weight.detach()
    assert abs(float(w.std()) - 0.02) < 1e-3 and abs(float(w.mean())) < 1e-3
    bn = G.encoder[1][2]
    assert abs(float(bn.weight.detach().mean()) - 1.0) < 0.01 and float(bn.bias.detach().abs().max()) == 0.0


# ----------------------------------------------------------------- objective
def test_losses_are_the_papers():
    real, fake = torch.tensor([[2.0, -1.0]]), torch.tensor([[0.5, -3.0]])
    sig = torch.sigmoid
    by_hand = -0.5 * ((torch.log(sig(real))).mean() + torch.log(1 - sig(fake)).mean())
    assert torch.allclose(p2p_train.discriminator_loss(real, fake), by_hand, atol=1e-6)
    assert torch.allclose(p2p_train.generator_gan_loss(fake), -torch.log(sig(fake)).mean(), atol=1e-6)
    a, b = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert float(p2p_train.l1_loss(a, b)) == 0.5


def test_linear_decay_is_constant_then_linear_to_zero():
    """The official rule 1 - max(0, e + 1 - n_constant) / (decay_epochs + 1) with 200 = 100 + 100 epochs."""
    rates = [2e-4 * p2p_train.linear_decay(e, 200, 100) for e in range(200)]
    assert rates[:100] == [2e-4] * 100  # constant for the first 100 epochs
    assert rates[100] == pytest.approx(2e-4 * (1 - 1 / 101))
    assert rates[199] == pytest.approx(2e-4 / 101)  # the official rule's last step
    assert all(a > b for a, b in zip(rates[100:], rates[101:]))
    assert p2p_train.linear_decay(500, 200, 100) == 0.0  # past the end: zero, never negative
    assert [p2p_train.linear_decay(e, 3, 3) for e in range(3)] == [0.75, 0.5, 0.25]  # no constant epochs


def test_lambda_lr_state_restores_the_epoch_and_the_options_give_the_rate():
    """LambdaLR with the rule: stepped once per epoch it sets the rule's rates; its checkpoint
    state carries the epoch (not the rule), so a longer run resumed from it decays by its own options."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    a = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: p2p_train.linear_decay(e, 4, 2))
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        a.step()
    assert seen == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3]) and a.last_epoch == 4
    b = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([p], lr=1.0), lambda e: p2p_train.linear_decay(e, 8, 2))
    b.load_state_dict(a.state_dict())
    assert b.last_epoch == 4 and b.base_lrs == [1.0]
    b.optimizer.step()
    b.step()
    assert b.get_last_lr() == [1.0]  # epoch 5 of the 8-epoch run is still constant


def test_one_step_updates_both_networks_with_finite_losses():
    torch.manual_seed(0)
    G, D = UNetGenerator(ngf=8, image_size=32), PatchDiscriminator(6, 8)
    G.apply(init_weights), D.apply(init_weights)
    before_g, before_d = G.encoder[0][0].weight.clone(), D.net[0].weight.clone()
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    x, y = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    losses = p2p_train.train_step(G, D, opt_g, opt_d, x, y, Precision("fp32", torch.device("cpu")))
    assert all(torch.isfinite(v) for v in losses.values())
    assert not torch.equal(before_g, G.encoder[0][0].weight) and not torch.equal(before_d, D.net[0].weight)
    assert all(p.requires_grad for p in D.parameters())  # frozen only during G's step


def test_paper_test_mode_keeps_running_stats_and_the_rng():
    G = UNetGenerator(ngf=8, image_size=32)
    G.eval()
    stats = G.encoder[1][2].running_mean.clone()
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    x = torch.randn(2, 3, 32, 32) * 3 + 1
    torch.manual_seed(5)
    a = run_generator(G, x, "cpu", seed=1)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream did not move
    assert torch.equal(G.encoder[1][2].running_mean, stats) and not G.training
    assert torch.equal(run_generator(G, x, "cpu", seed=1), a)  # dropout seeded by --seed
    assert not torch.equal(run_generator(G, x, "cpu", seed=2), a)
    e1, e2 = run_generator(G, x, "cpu", eval_mode=True), run_generator(G, x, "cpu", eval_mode=True, seed=9)
    assert torch.equal(e1, e2) and not torch.equal(e1, a)  # eval mode: no noise, running statistics
    with paper_test_mode(G, 0):
        assert G.training


# ---------------------------------------------------------------------- data
def test_embedded_pairs_are_aligned_keyed_and_held_out():
    ds = EmbeddedPairs("edges2photo", load_size=72, crop_size=64, length=4)
    x, y = ds[(1, 0)]
    assert x.shape == y.shape == (3, 64, 64)
    assert set(x.unique().tolist()) <= {-1.0, 1.0}  # black lines on white
    y01 = ((y + 1) * 127.5).round().permute(1, 2, 0).byte().numpy()
    assert torch.equal(to_tensor(edges(y01)), x)  # the input is made from the jittered target
    assert torch.equal(ds[(1, 0)][1], y) and not torch.equal(ds[(1, 1)][1], y)  # same key same crop; new epoch new
    a, b = held_out_pairs("edges2photo", 32, n=4)
    assert a.shape == b.shape == (4, 3, 32, 32)
    x2, y2 = EmbeddedPairs("edges2photo", length=4, direction="BtoA", load_size=72, crop_size=64)[(1, 0)]
    assert torch.equal(x2, y) and torch.equal(y2, x)


def test_colorize_is_lightness_to_ab_in_lab_as_the_official_code():
    """The paper's colourisation (Sec. 4.5): L of CIE Lab in, ab out, scaled L / 50 - 1 and ab / 110."""
    ds = EmbeddedPairs("colorize", load_size=72, crop_size=64, length=4)
    lightness, ab = ds[(1, 0)]
    assert lightness.shape == (1, 64, 64) and ab.shape == (2, 64, 64)
    assert lightness.min() >= -1 and lightness.max() <= 1 and ab.abs().max() <= 1
    rgb = lab_to_rgb(lightness[None], ab[None])[0]  # back to the photo: the pair is lossless
    photo = ((rgb + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    l2, ab2 = lab_pair(photo)
    assert (l2 - lightness).abs().max() < 0.02 and (ab2 - ab).abs().max() < 0.02
    grey_rgb = lab_to_rgb(lightness[None], torch.zeros_like(ab)[None])[0]  # the baseline: L with no colour
    assert (grey_rgb[0] - grey_rgb[1]).abs().max() < 1e-3 and (grey_rgb[1] - grey_rgb[2]).abs().max() < 1e-3
    shown = as_images("colorize", lightness[None], ab[None], ab[None])
    assert [t.shape[1] for t in shown] == [3, 3, 3] and torch.allclose(shown[1], shown[2])
    a, b = held_out_pairs("colorize", 32, n=4)
    assert a.shape == (4, 1, 32, 32) and b.shape == (4, 2, 32, 32)
    with pytest.raises(DataError, match="BtoA"):
        EmbeddedPairs("colorize", length=2, direction="BtoA")


def test_jitter_moves_every_target_alike_and_is_seeded():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    t = jitter(40, 32, targets=("target", "other"))
    outs = [augment(t, s, a, target=a.copy(), other=a.copy()) for s in range(6)]
    for out in outs:
        assert out["image"].shape == (32, 32, 3)
        assert np.array_equal(out["image"], out["target"]) and np.array_equal(out["image"], out["other"])
    assert len({o["image"].tobytes() for o in outs}) > 1  # the seeds give different crops
    again = augment(t, 3, a, target=a, other=a)
    assert np.array_equal(again["image"], outs[3]["image"])
    mirrored = {augment(jitter(40, 40), s, a)["image"].tobytes() for s in range(8)}
    assert len(mirrored) == 2  # load == crop: no crop, the image or its mirror
    assert len({augment(jitter(40, 40, flip=False), s, a)["image"].tobytes() for s in range(4)}) == 1
    with pytest.raises(Exception, match="larger"):
        jitter(30, 32)


def test_edges_are_black_lines_on_white():
    photo = np.zeros((40, 40, 3), np.uint8)
    photo[:, 20:] = 255
    e = edges(photo, sigma=1.0)
    assert e[:, 19:21].min() == 0 and e[:, :10].min() == 255


def write_pair_image(path, a: np.ndarray, b: np.ndarray, mode: str = "RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([a, b], axis=1)).convert(mode).save(path)


def random_image(rng, h, w):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_aligned_layout_splits_halves_and_jitters_both_alike(tmp_path):
    rng = np.random.default_rng(0)
    a = random_image(rng, 40, 40)
    write_pair_image(tmp_path / "train/1.png", a, a)  # B == A: any mismatch in the jitter shows
    write_pair_image(tmp_path / "train/2.png", a, 255 - a)
    ds = PairedFolder(tmp_path, "train", load_size=36, crop_size=32)
    for epoch in range(4):
        x, y = ds[(0, epoch)]
        assert torch.equal(x, y)
        x, y = ds[(1, epoch)]
        assert torch.allclose(x, -y, atol=1e-6)
    back = PairedFolder(tmp_path, "train", load_size=40, crop_size=40, flip=False, direction="BtoA")
    x, y = back[(1, 0)]
    assert torch.allclose(x, torch.from_numpy(255 - a).permute(2, 0, 1).float() / 127.5 - 1, atol=0.04)


def test_a_and_b_folders_are_matched_by_name(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("x", "y"):
        img = random_image(rng, 20, 30)
        (tmp_path / "A").mkdir(exist_ok=True), (tmp_path / "B").mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / "A" / f"{name}.png")
        Image.fromarray(img).save(tmp_path / "B" / f"{name}.jpg" if name == "y" else tmp_path / "B" / f"{name}.png")
    ds = PairedFolder(tmp_path, "train", load_size=16, crop_size=16, flip=False)
    assert len(ds) == 2 and ds.layout.startswith("A/ and B/")
    x, y = ds[(0, 0)]
    assert torch.equal(x, y)


def test_train_end_to_end_writes_checkpoint_rows_events_and_schedules(tmp_path):
    out = tmp_path / "run"
    proc = run_script("pix2pix", "train", *TINY, "--max-steps", "3", "--out", out, "--sample-every", "2")
    assert proc.returncode == 0, proc.stderr
    g, d = UNetGenerator(1, 2, ngf=8, image_size=32), PatchDiscriminator(3, 8)  # 32x32, L -> ab: a 5-down U-Net
    assert f"G {n_params(g):,} / D {n_params(d):,} parameters" in proc.stdout
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["step"] == 3 and set(payload["models"]) == {"G", "D"}
    assert set(payload["states"]) == {"lr_G", "lr_D"} and payload["states"]["lr_G"]["last_epoch"] == 0
    grid = Image.open(out / "samples/samples_0000002.png")
    assert grid.size[0] == 3 * 32 + 4 * 2  # three columns: input | output | target
    assert any(p.name.startswith("events.out.tfevents") for p in out.iterdir())
    options = json.loads((out / "options.json").read_text())
    assert options["lambda_l1"] == 100.0 and options["netD"] == "patch70" and options["batch_size"] == 1


def test_learning_rate_is_constant_then_decays_linearly(tmp_path):
    out = tmp_path / "lr"
    p2p_train.main(p2p_train.parse_opt(TINY + ["--epoch-length", "2", "--epochs", "4", "--decay-epochs", "2",
                                               "--out", str(out), "--max-steps", "7"]))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out))
    acc.Reload()
    for tag in ("train/lr_G", "train/lr_D"):  # the rate of each step, logged by the loop before it steps
        lrs = [round(e.value / 2e-4, 6) for e in acc.Scalars(tag)]
        assert lrs == [1, 1, 1, 1, round(2 / 3, 6), round(2 / 3, 6), round(1 / 3, 6)], tag


def weights(path):
    payload = load_file(path)
    return payload["models"], payload["optimizers"]


def test_resume_is_exact_across_an_epoch_boundary(tmp_path):
    """5 steps straight == 2, stop, resume, 3 more, with the learning rate decaying at step 4
    and the jitter drawn anew each epoch: same weights and Adam moments bit for bit."""
    common = TINY + ["--epoch-length", "3", "--epochs", "2", "--decay-epochs", "1", "--seed", "4",
                     "--sample-every", "100", "--save-every", "100"]
    p2p_train.main(p2p_train.parse_opt(common + ["--max-steps", "5", "--out", str(tmp_path / "a")]))
    p2p_train.main(p2p_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    p2p_train.main(p2p_train.parse_opt(common + ["--max-steps", "5", "--out", str(tmp_path / "b"),
                                                 "--resume", "auto"]))
    (ma, oa), (mb, ob) = weights(tmp_path / "a/checkpoints/last.pt"), weights(tmp_path / "b/checkpoints/last.pt")
    for net in ("G", "D"):
        for key in ma[net]:
            assert torch.equal(ma[net][key], mb[net][key]), f"{net}.{key} differs after resume"
        for va, vb in zip(oa[net]["state"].values(), ob[net]["state"].values()):
            assert torch.equal(va["exp_avg"], vb["exp_avg"]) and torch.equal(va["exp_avg_sq"], vb["exp_avg_sq"])
        assert oa[net]["param_groups"][0]["lr"] == ob[net]["param_groups"][0]["lr"] == 1e-4
    p2p_train.main(p2p_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "c")]))
    mc, _ = weights(tmp_path / "c/checkpoints/last.pt")
    assert not torch.equal(ma["G"]["encoder.0.0.weight"], mc["G"]["encoder.0.0.weight"])  # the check can fail


TINY_RUN = TINY + ["--seed", "2", "--max-steps", "3", "--sample-every", "100", "--save-every", "100"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("p2p") / "run"
    p2p_train.main(p2p_train.parse_opt(TINY_RUN + ["--out", str(out)]))
    return out


def test_generate_rows_files_and_folders_of_any_size(tiny_run, tmp_path, capsys):
    ckpt = str(tiny_run / "checkpoints/last.pt")
    p2p_generate.main(p2p_generate.parse_opt(["--checkpoint", ckpt, "--out", str(tmp_path / "rows.png"), "--n", "4",
                                              "--device", "cpu"]))
    assert Image.open(tmp_path / "rows.png").size == (3 * 32 + 8, 4 * 32 + 10)
    rng = np.random.default_rng(2)
    (tmp_path / "in/sub").mkdir(parents=True)
    Image.fromarray(random_image(rng, 45, 70)).save(tmp_path / "in/odd.png")
    Image.fromarray(random_image(rng, 5, 9)[..., 0]).save(tmp_path / "in/sub/tiny_grey.png")
    proc = run_script("pix2pix", "generate", "--checkpoint", ckpt, "--input", tmp_path / "in", "--out",
                      tmp_path / "out", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "1 of 2 images" in proc.stdout and "lightness" in proc.stdout
    assert Image.open(tmp_path / "out/odd.png").size == (70, 45)
    assert Image.open(tmp_path / "out/sub/tiny_grey.png").size == (9, 5)
    p2p_generate.main(p2p_generate.parse_opt(["--checkpoint", ckpt, "--input", str(tmp_path / "in/odd.png"), "--out",
                                              str(tmp_path / "one.jpg"), "--eval-mode", "--as-is", "--device", "cpu"]))
    assert Image.open(tmp_path / "one.jpg").size == (70, 45)


def test_evaluate_reports_g_beside_the_input_itself(tiny_run):
    ckpt = tiny_run / "checkpoints/last.pt"
    proc = run_script("pix2pix", "evaluate", "--checkpoint", ckpt, "--n", "4", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "G(A) vs B: L1" in proc.stdout and "baseline: A itself vs B: L1" in proc.stdout
    g, base = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()[-2:]]
    lightness, ab = held_out_pairs("colorize", 32, n=4)  # measured on RGB: L with no colour against L with ab
    inputs, targets = lab_to_rgb(lightness, torch.zeros_like(ab)), lab_to_rgb(lightness, ab)
    mse = ((inputs - targets) / 2).square().mean(dim=(1, 2, 3))  # on [0, 1]
    assert base["psnr"] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), abs=1e-3)
    assert base["l1"] == pytest.approx(float((inputs - targets).abs().mean()), abs=1e-6)
    assert g["step"] == 3 and g["psnr"] != base["psnr"]


def test_pad_to_multiple_mirrors_and_crops_back():
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7)
    y, (h, w) = pad_to_multiple(x, 4)
    assert y.shape == (1, 2, 8, 8) and (h, w) == (5, 7)
    assert torch.equal(y[..., :5, :7], x)
    assert torch.equal(y[..., 5, :7], x[..., 3, :])  # reflected, not zero
    tiny, _ = pad_to_multiple(torch.ones(1, 3, 2, 3), 256)  # too small to mirror: replicated
    assert tiny.shape == (1, 3, 256, 256) and float(tiny.min()) == 1.0
    same, _ = pad_to_multiple(x[..., :4, :4], 4)
    assert same.shape == (1, 2, 4, 4)


def test_rows_interleave_input_output_target():
    a, b, c = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    rows = input_output_target_rows(a, b, c)
    assert rows.shape == (6, 3, 4, 4)
    assert [float(r.mean()) for r in rows] == [0, 1, 0.5, 0, 1, 0.5]
    assert [float(r.mean()) for r in input_output_target_rows(a, b)] == [0, 1, 0, 1]


def test_paired_report_by_hand():
    target = torch.zeros(2, 3, 8, 8)
    pred = torch.full((2, 3, 8, 8), 0.2)  # 0.1 apart on [0, 1]: PSNR = 20 dB
    report = paired_report(pred, target)
    assert report["l1"] == pytest.approx(0.2) and report["psnr"] == pytest.approx(20.0, abs=1e-4)
    textured = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert paired_report(textured, textured)["ssim"] == pytest.approx(1.0)


# ----------------------------------------------------------------- bad input
def train_in_process(capsys, *args) -> SimpleNamespace:
    return in_process(capsys, lambda: p2p_train.main(p2p_train.parse_opt(TINY + [str(a) for a in args])))


def test_bad_data_gives_one_clear_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(train_in_process(capsys, "--data", tmp_path / "empty", "--out", tmp_path / "o"), "empty")
    assert_one_line_error(train_in_process(capsys, "--data", tmp_path / "nope", "--out", tmp_path / "o"),
                          "no such folder")
    rng = np.random.default_rng(3)
    Image.fromarray(random_image(rng, 30, 40)).save((tmp_path / "notpaired.png"))
    (tmp_path / "wide/train").mkdir(parents=True)
    Image.fromarray(random_image(rng, 30, 40)).save(tmp_path / "wide/train/photo.png")
    assert_one_line_error(train_in_process(capsys, "--data", tmp_path / "wide", "--out", tmp_path / "o"),
                          "photo.png", "twice its height")
    for side in ("A", "B"):
        (tmp_path / "ab" / side).mkdir(parents=True)
        Image.fromarray(random_image(rng, 20, 20)).save(tmp_path / "ab" / side / "shared.png")
    Image.fromarray(random_image(rng, 20, 20)).save(tmp_path / "ab/A/lonely.png")
    assert_one_line_error(train_in_process(capsys, "--data", tmp_path / "ab", "--out", tmp_path / "o"),
                          "lonely.png", "no partner")


def test_grey_and_16_bit_pairs_are_converted_and_said_so(tmp_path, capsys):
    rng = np.random.default_rng(4)
    write_pair_image(tmp_path / "train/a.png", random_image(rng, 36, 36), random_image(rng, 36, 36), mode="L")
    Image.fromarray((rng.integers(0, 65535, (36, 72))).astype(np.uint16)).save(tmp_path / "train/b.png")
    write_pair_image(tmp_path / "train/c.png", random_image(rng, 36, 36), random_image(rng, 36, 36))
    proc = train_in_process(capsys, "--data", tmp_path, "--max-steps", "2", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert "2 of 3 images" in proc.stdout and "converted to RGB" in proc.stdout
    assert load_file(tmp_path / "o/checkpoints/last.pt")["step"] == 2


def test_eval_every_logs_paired_metrics_and_leaves_training_unchanged(tiny_run, tmp_path):
    """The tiny run again with --eval-every 2 in its 3 steps: evaluated at step 2 and, by the
    loop's final evaluation, at step 3; the weights are those of the run without evaluation."""
    p2p_train.main(p2p_train.parse_opt(TINY_RUN + ["--out", str(tmp_path / "eval"), "--eval-every", "2",
                                                   "--eval-n", "4"]))
    plain, evaluated = weights(tiny_run / "checkpoints/last.pt"), weights(tmp_path / "eval/checkpoints/last.pt")
    for key, value in plain[0]["G"].items():
        assert torch.equal(value, evaluated[0]["G"][key]), f"evaluation changed training: G.{key}"
    records = [json.loads(line) for line in (tmp_path / "eval/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 3] and all(r["psnr"] > 0 and "l1" in r for r in records)


def test_checkpoint_of_another_model_is_refused(tmp_path, capsys):
    from dcgan import train as dcgan_train

    dcgan_train.main(dcgan_train.parse_opt(["--image-size", "16", "--ngf", "4", "--ndf", "4", "--batch-size", "8",
                                            "--max-steps", "1", "--device", "cpu", "--precision", "fp32",
                                            "--out", str(tmp_path / "d")]))
    capsys.readouterr()
    ckpt = str(tmp_path / "d/checkpoints/last.pt")
    generate = in_process(capsys, lambda: p2p_generate.main(p2p_generate.parse_opt(["--checkpoint", ckpt,
                                                                                    "--device", "cpu"])))
    assert_one_line_error(generate, "not of 'pix2pix'")
    assert_one_line_error(train_in_process(capsys, "--resume", ckpt, "--out", tmp_path / "o"), "not of 'pix2pix'")


def test_bad_sizes_are_refused_by_the_parser():
    with pytest.raises(SystemExit):
        p2p_train.parse_opt(["--image-size", "100"])
    with pytest.raises(SystemExit):
        p2p_train.parse_opt(["--image-size", "256", "--load-size", "200"])
    with pytest.raises(SystemExit):  # colourisation is L -> ab only
        p2p_train.parse_opt(["--data", "colorize", "--direction", "BtoA"])
    assert (p2p_train.parse_opt([]).input_channels, p2p_train.parse_opt([]).output_channels) == (1, 2)


def test_help_names_the_paper_defaults(capsys):
    with pytest.raises(SystemExit):
        p2p_train.parse_opt(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("default 100, Sec. 4.2", "default 2e-4", "default 0.5", "default 1", "70x70", "286",
                   "colorize | edges2photo"):
        assert needle in text, needle
