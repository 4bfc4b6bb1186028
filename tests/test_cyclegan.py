"""CycleGAN: architecture against the paper's appendix and the official counts, the losses, the
image pool, one step, end to end, exact resume, generate / evaluate, the unpaired data, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from common.checkpoint import load_file
from common.data import HELD_OUT_PHOTOS, augment
from common.device import Precision
from cyclegan import dataset as cg_data
from cyclegan import evaluate as cg_evaluate
from cyclegan import generate as cg_generate
from cyclegan import train as cg_train
from cyclegan.model import PatchDiscriminator, ResnetGenerator, init_weights
from cyclegan.utils import ImagePool, load_generator, pad_to_multiple, paired_report, translate
from tests.helpers import ROOT, assert_one_line_error, in_process, run_script

TINY = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--precision", "fp32", "--device", "cpu",
        "--log-every", "1"]


def conv_params(model: nn.Module) -> list[int]:
    """Parameters of each (transposed) convolution, in the order they are applied."""
    return [sum(p.numel() for p in m.parameters()) for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------- architecture
def test_generator_parameters_layer_by_layer_match_the_official_count():
    """c7s1-64, d128, d256, R256 x9, u128, u64, c7s1-3 with 3 channels; every conv has a bias,
    InstanceNorm has no parameters. Official resnet_9blocks: 11,378,179."""
    c7s1_64 = 3 * 64 * 7 * 7 + 64
    d128 = 64 * 128 * 3 * 3 + 128
    d256 = 128 * 256 * 3 * 3 + 256
    r256_conv = 256 * 256 * 3 * 3 + 256  # two per residual block
    u128 = 256 * 128 * 3 * 3 + 128
    u64 = 128 * 64 * 3 * 3 + 64
    c7s1_3 = 64 * 3 * 7 * 7 + 3
    for blocks in (9, 6):
        expected = [c7s1_64, d128, d256] + [r256_conv] * (2 * blocks) + [u128, u64, c7s1_3]
        G = ResnetGenerator(3, 64, blocks)
        assert conv_params(G) == expected
        assert n_params(G) == sum(expected)
    assert n_params(ResnetGenerator(3, 64, 9)) == 11_378_179
    assert n_params(ResnetGenerator(3, 64, 6)) == 7_837_699  # the 128x128 configuration


def test_discriminator_parameters_layer_by_layer_and_30x30_map():
    expected = [3 * 64 * 16 + 64, 64 * 128 * 16 + 128, 128 * 256 * 16 + 256, 256 * 512 * 16 + 512, 512 * 16 + 1]
    D = PatchDiscriminator(3, 64)
    assert conv_params(D) == expected
    assert n_params(D) == 2_764_737  # the official basic D, 3 input channels
    assert D(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    # no norm on C64; InstanceNorm (no affine, no running statistics) after C128, C256, C512
    norms = [m for m in D.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 and not any(m.affine or m.track_running_stats for m in norms)
    assert isinstance(D.main[1], nn.LeakyReLU) and D.main[1].negative_slope == 0.2


def test_patchgan_receptive_field_is_70x70():
    D = PatchDiscriminator(3, 8).double()
    D.apply(init_weights)
    # InstanceNorm's statistics span the whole image; without them, one score sees one patch
    for i, layer in enumerate(D.main):
        if isinstance(layer, nn.InstanceNorm2d):
            D.main[i] = nn.Identity()
    x = torch.randn(1, 3, 128, 128, dtype=torch.double, requires_grad=True)
    out = D(x)
    out[0, 0, 6, 6].backward()
    rows, cols = (x.grad[0].abs().sum(0) > 0).nonzero(as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == 70 and int(cols.max() - cols.min() + 1) == 70


def test_generator_layers_follow_the_appendix():
    G = ResnetGenerator(3, 16, 6)
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    out = G(torch.randn(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert shapes[:3] == [(16, 64, 64), (32, 32, 32), (64, 16, 16)]
    assert shapes[3:-3] == [(64, 16, 16)] * 12
    assert shapes[-3:] == [(32, 32, 32), (16, 64, 64), (3, 64, 64)]
    assert out.shape == (1, 3, 64, 64) and out.abs().max() <= 1
    assert isinstance(G.main[-1], nn.Tanh)
    pads = [m for m in G.modules() if isinstance(m, nn.ReflectionPad2d)]
    assert len(pads) == 2 + 2 * 6  # c7s1 in and out, two per residual block
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in G.modules())
    norms = [m for m in G.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 + 2 * 6 + 2 and not any(m.affine for m in norms)


def test_init_is_normal_0_002_with_zero_bias():
    torch.manual_seed(0)
    G = ResnetGenerator(3, 64, 6)
    G.apply(init_weights)
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.Conv2d)])
    w = w.detach()
    assert abs(float(w.mean())) < 1e-4 and abs(float(w.std()) - 0.02) < 1e-4
    assert all(float(m.bias.detach().abs().max()) == 0 for m in G.modules() if isinstance(m, nn.Conv2d))


def test_options_resolve_blocks_and_sizes():
    opt = cg_train.parse_opt(["--data", "some/folder"])
    assert (opt.image_size, opt.load_size, opt.n_blocks) == (256, 286, 9)  # the paper's 256x256 setting
    opt = cg_train.parse_opt(["--data", "some/folder", "--image-size", "128"])
    assert (opt.load_size, opt.n_blocks) == (143, 6)
    opt = cg_train.parse_opt([])
    assert (opt.data, opt.image_size, opt.load_size, opt.n_blocks) == ("photos", 64, 72, 6)
    assert (opt.epochs, opt.decay_epochs, opt.batch_size, opt.lr, opt.beta1) == (200, 100, 1, 2e-4, 0.5)
    assert (opt.lambda_cycle, opt.lambda_identity, opt.pool_size) == (10.0, 0.5, 50)
    with pytest.raises(SystemExit):
        cg_train.parse_opt(["--image-size", "30"])


# ------------------------------------------------------------------ losses
def test_losses_match_the_equations():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([0.25, -1.0])
    # LSGAN D loss, halved: 0.5 * (mean((real - 1)^2) + mean(fake^2))
    expected_d = 0.5 * (((0.5 - 1) ** 2 + (2 - 1) ** 2) / 2 + (0.25 ** 2 + 1.0) / 2)
    assert float(cg_train.lsgan_discriminator_loss(real, fake)) == pytest.approx(expected_d)
    assert float(cg_train.lsgan_generator_loss(fake)) == pytest.approx(((0.25 - 1) ** 2 + 4) / 2)
    x, y = torch.zeros(2, 3), torch.full((2, 3), 0.5)
    assert float(cg_train.cycle_loss(x, y)) == pytest.approx(0.5)
    assert float(cg_train.identity_loss(y, y)) == 0.0
    one = torch.tensor(1.0)
    # eq. 3 with lambda 10, identity at 0.5 * lambda: 1 + 1 + 10 * 2 + 5 * 2
    assert float(cg_train.full_objective(one, one, one, one, one, one, 10.0, 0.5)) == pytest.approx(32.0)
    assert float(cg_train.full_objective(one, one, one, one, one, one, 10.0, 0.0)) == pytest.approx(22.0)


def test_linear_decay_is_the_papers_100_plus_100_epochs():
    """Sec. 4: the same rate for 100 epochs, then linearly towards zero over 100 more, by the
    official rule 1 - max(0, e + 1 - 100) / 101, zero past the end."""
    rates = [cg_train.linear_decay(e, 200, 100) for e in range(200)]
    assert rates[:100] == [1.0] * 100
    assert rates[100] == pytest.approx(100 / 101) and rates[199] == pytest.approx(1 / 101)
    assert all(a > b for a, b in zip(rates[100:], rates[101:]))
    assert cg_train.linear_decay(500, 200, 100) == 0.0 and cg_train.linear_decay(0, 2, 0) == 1.0


# --------------------------------------------------------------- image pool
def test_image_pool_stores_the_first_50_then_swaps_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(50)
    first = torch.arange(50.0).view(50, 1, 1, 1)
    for i in range(50):  # the first 50 are stored and handed back as they are
        assert torch.equal(pool.query(first[i:i + 1]), first[i:i + 1])
    assert len(pool) == 50
    stored = {float(x) for x in pool.state_dict()["images"].flatten()}
    assert stored == set(range(50))
    swapped, n = 0, 2000
    for i in range(n):
        new = torch.full((1, 1, 1, 1), 1000.0 + i)
        before = {float(x) for x in pool.state_dict()["images"].flatten()}
        out = float(pool.query(new))
        after = {float(x) for x in pool.state_dict()["images"].flatten()}
        if out == 1000.0 + i:  # the new image itself; the history is unchanged
            assert after == before
        else:  # an old image from the history, and the new one takes its slot
            swapped += 1
            assert out in before and after == (before - {out}) | {1000.0 + i}
        assert len(pool) == 50
    assert abs(swapped / n - 0.5) < 0.04  # 4 standard deviations of a fair coin over 2000 draws


def test_image_pool_state_round_trip_continues_identically():
    torch.manual_seed(1)
    pool = ImagePool(5)
    for _ in range(8):
        pool.query(torch.randn(2, 3, 4, 4))
    copy = ImagePool(5)
    copy.load_state_dict(pool.state_dict())
    rng = torch.get_rng_state()
    batch = torch.randn(3, 3, 4, 4)
    outs = [pool.query(batch) for _ in range(4)]
    torch.set_rng_state(rng)
    batch_again = torch.randn(3, 3, 4, 4)
    outs_copy = [copy.query(batch_again) for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(outs, outs_copy))
    assert any(not torch.equal(o, batch) for o in outs)  # the history was really used
    with pytest.raises(Exception, match="pool-size"):
        ImagePool(7).load_state_dict(pool.state_dict())


# ----------------------------------------------------------------- one step
def test_one_training_step_updates_all_four_networks_with_finite_losses():
    torch.manual_seed(0)
    nets = [ResnetGenerator(3, 8, 2), ResnetGenerator(3, 8, 2), PatchDiscriminator(3, 8), PatchDiscriminator(3, 8)]
    for m in nets:
        m.apply(init_weights)
    opt_g = torch.optim.Adam([*nets[0].parameters(), *nets[1].parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*nets[2].parameters(), *nets[3].parameters()], lr=2e-4, betas=(0.5, 0.999))
    before = [[p.detach().clone() for p in m.parameters()] for m in nets]
    pool_a, pool_b = ImagePool(50), ImagePool(50)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses = cg_train.train_step(*nets, opt_g, opt_d, a, b, Precision("fp32", torch.device("cpu")), pool_a, pool_b)
    assert set(losses) >= {"loss_g", "G_AB", "G_BA", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    assert all(torch.isfinite(v) for v in losses.values())
    for m, old in zip(nets, before):
        assert all(not torch.equal(p0, p) for p0, p in zip(old, m.parameters()))
        assert all(p.requires_grad for p in m.parameters())
    assert len(pool_a) == 2 and len(pool_b) == 2  # the D step drew its fakes through the pools
    expected = float(losses["G_AB"] + losses["G_BA"] + 10 * (losses["cycle_A"] + losses["cycle_B"])
                     + 5 * (losses["idt_A"] + losses["idt_B"]))
    assert float(losses["loss_g"]) == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------- the data
def test_hidden_mapping_and_held_out_photos():
    assert not set(cg_data.PHOTOS_A) & set(cg_data.PHOTOS_B)
    assert not (set(cg_data.PHOTOS_A) | set(cg_data.PHOTOS_B)) & set(HELD_OUT_PHOTOS)
    grey = torch.full((3, 2, 2), 0.0)  # mid grey (0.5 on [0, 1]) stays grey, lifted by the tone curve
    out = cg_data.hidden_mapping(grey)
    assert torch.allclose(out, torch.full_like(out, 2 * 0.5 ** cg_data.GAMMA - 1), atol=1e-6)
    red = torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1)  # pure red goes mostly to green
    expected = cg_data.COLOUR_MATRIX[:, 0].pow(cg_data.GAMMA) * 2 - 1
    assert torch.allclose(cg_data.hidden_mapping(red).flatten(), expected, atol=1e-6)


def test_embedded_data_is_unpaired_keyed_and_b_is_mapped():
    ds = cg_data.EmbeddedUnpaired(32, 36, seed=0, epoch_size=10)
    a, b = ds[(3, 0)]
    assert a.shape == b.shape == (3, 32, 32) and len(ds) == 10
    assert torch.equal(ds[(3, 0)][0], a) and torch.equal(ds[(3, 0)][1], b)  # a pure function of the key
    assert not torch.equal(ds[(3, 1)][0], a)  # new crops every epoch
    # every b is T of an 8-bit crop: undoing the tone curve and the colour matrix gives values
    # k/255 in [0, 1]; the a's are not (they leave [0, 1] under T's inverse)
    inverse = torch.linalg.inv(cg_data.COLOUR_MATRIX.double())

    def undo_t(x):
        return torch.einsum("ij,jhw->ihw", inverse, ((x.double() + 1) / 2).clamp(0, 1) ** (1 / cg_data.GAMMA))

    a_outside = 0
    for i in range(10):
        a_i, b_i = ds[(i, 0)]
        pre = undo_t(b_i) * 255
        assert float(pre.min()) > -1e-3 and float(pre.max()) < 255 + 1e-3
        assert float((pre - pre.round()).abs().max()) < 1e-2
        a_outside += int(float(undo_t(a_i).min()) < -0.01 or float(undo_t(a_i).max()) > 1.01)
    assert a_outside > 0
    crops = cg_data.held_out_crops(32)
    assert crops.shape == (cg_data.EVAL_CROPS, 3, 32, 32) and torch.equal(crops, cg_data.held_out_crops(32))


def test_jitter_is_seeded_resizes_crops_and_mirrors():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    t = cg_data.jitter(40, 32)
    outs = [augment(t, s, a)["image"] for s in range(6)]
    assert all(o.shape == (32, 32, 3) for o in outs)
    assert len({o.tobytes() for o in outs}) > 1 and np.array_equal(augment(t, 3, a)["image"], outs[3])
    assert len({augment(cg_data.jitter(40, 40), s, a)["image"].tobytes() for s in range(8)}) == 2  # or its mirror
    assert cg_data.resize_only(24)(image=a)["image"].shape == (24, 24, 3)
    with pytest.raises(Exception, match="larger"):
        cg_data.jitter(30, 32)


def write_layout(root, grey=True):
    rng = np.random.default_rng(0)
    for side, sizes in (("trainA", [(40, 36), (50, 44), (36, 36)]), ("trainB", [(60, 40), (38, 42)]),
                        ("testA", [(44, 40)]), ("testB", [(40, 52)])):
        (root / side).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / side / f"{i}.png")
    if grey:
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8), mode="L").save(root / "trainA" / "grey.png")
    return root


def test_unpaired_folder_layout(tmp_path, capsys):
    root = write_layout(tmp_path / "ds")
    ds = cg_data.UnpairedFolder(root, 32, 36, seed=0)
    assert "1 of 4 images" in capsys.readouterr().out  # the grey PNG is announced, then converted
    assert len(ds) == 4  # max(|A|, |B|)
    a, b = ds[(3, 0)]  # the grey image: converted to RGB, its three channels equal
    assert a.shape == b.shape == (3, 32, 32) and torch.equal(a[0], a[1]) and torch.equal(a[1], a[2])
    assert torch.equal(ds[(1, 2)][1], ds[(1, 2)][1])  # the same key reads the same pair
    # B is drawn independently of A: over epochs, the same A index meets both B images
    b_seen = {tuple(ds[(0, e)][1][:, 0, 0].tolist()) for e in range(12)}
    assert len(b_seen) > 1
    evaluation = cg_data.evaluation_set({"data": str(root), "image_size": 32})
    assert evaluation["target"] is None and evaluation["a"].shape == (1, 3, 32, 32)
    assert "testA" in evaluation["source"]


# -------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cyclegan") / "run"
    proc = run_script("cyclegan", "train", *TINY, "--max-steps", "4", "--sample-every", "2", "--eval-every", "3",
                      "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_script_writes_checkpoint_grid_events_and_options(tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, proc = tiny_run
    payload = load_file(out / "checkpoints" / "last.pt")
    assert payload["step"] == 4 and payload["model_name"] == "cyclegan"
    assert set(payload["models"]) == {"G_AB", "G_BA", "D_A", "D_B"} and set(payload["optimizers"]) == {"G", "D"}
    assert set(payload["states"]) == {"pool_A", "pool_B", "lr_G", "lr_D"}
    assert payload["states"]["pool_A"]["images"].shape == (4, 3, 32, 32)  # batch 1, four steps
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["samples_0000002.png", "samples_0000004.png"]
    # rows of real A | fake B | rec A | real B | fake A | rec B: 6 columns, 4 rows of 32 px + 2 px padding
    assert Image.open(out / "samples" / "samples_0000004.png").size == (6 * 34 + 2, 4 * 34 + 2)
    options = json.loads((out / "options.json").read_text())
    assert (options["n_blocks"], options["load_size"], options["data"]) == (6, 36, "photos")
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert {"train/loss_g", "train/D_A", "train/cycle_A", "train/lr_G"} <= set(acc.Tags()["scalars"])
    assert "samples" in acc.Tags()["images"]


def test_eval_every_measures_during_the_run_and_once_more_at_its_end(tiny_run):
    """--eval-every 3 in a 4-step run: evaluate.py's rows at step 3 and, through the loop, at the
    final step 4; the headline G_AB(a) vs T(a) in TensorBoard, every row in metrics.jsonl."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, proc = tiny_run
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if "key" not in r]  # evaluate.py's rows (another test) carry a key
    assert [r["step"] for r in records] == [3, 4] and "step 4: L1" in proc.stdout
    crops = cg_data.held_out_crops(32)
    baseline = paired_report(crops, cg_data.hidden_mapping(crops))
    for r in records:
        assert r["what"] == "G_AB(a) vs T(a)" and r["model"] == "cyclegan"
        assert r["identity_psnr"] == pytest.approx(baseline["psnr"]) and r["psnr"] != pytest.approx(baseline["psnr"])
        assert {"cycle_A_l1", "cycle_A_psnr", "cycle_A_ssim"} <= set(r)
    assert records[0]["psnr"] != records[1]["psnr"]  # G_AB trained in between
    acc = EventAccumulator(str(out))
    acc.Reload()
    assert [e.step for e in acc.Scalars("eval/psnr")] == [3, 4]


def test_resume_is_exact_across_the_pool_and_the_lr_decay(tmp_path):
    """6 steps straight == 3 steps, stop, resume, 3 more: identical weights, optimizer moments,
    pools. A 2-image pool swaps from step 3 on and the rate decays from epoch 1 (step 3), so
    both states matter."""
    common = TINY + ["--seed", "3", "--pool-size", "2", "--epoch-size", "2", "--epochs", "3",
                     "--decay-epochs", "2", "--sample-every", "100", "--save-every", "100"]
    cg_train.main(cg_train.parse_opt(common + ["--max-steps", "6", "--out", str(tmp_path / "a")]))
    cg_train.main(cg_train.parse_opt(common + ["--max-steps", "3", "--out", str(tmp_path / "b")]))
    cg_train.main(cg_train.parse_opt(common + ["--out", str(tmp_path / "b"), "--resume", "auto"]))
    pa, pb = load_file(tmp_path / "a/checkpoints/last.pt"), load_file(tmp_path / "b/checkpoints/last.pt")
    assert pa["step"] == pb["step"] == 6
    for net in ("G_AB", "G_BA", "D_A", "D_B"):
        for key, value in pa["models"][net].items():
            assert torch.equal(value, pb["models"][net][key]), f"{net}.{key} differs after resume"
    for name in ("G", "D"):
        for sa, sb in zip(pa["optimizers"][name]["state"].values(), pb["optimizers"][name]["state"].values()):
            assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
        assert pa["optimizers"][name]["param_groups"][0]["lr"] == pytest.approx(2e-4 / 3)  # epoch 2 of 3
    for pool in ("pool_A", "pool_B"):
        assert torch.equal(pa["states"][pool]["images"], pb["states"][pool]["images"])
    # and the comparison can fail: 5 steps differ
    cg_train.main(cg_train.parse_opt(common + ["--max-steps", "5", "--out", str(tmp_path / "c")]))
    pc = load_file(tmp_path / "c/checkpoints/last.pt")
    assert not torch.equal(pa["models"]["G_AB"]["main.1.weight"], pc["models"]["G_AB"]["main.1.weight"])


def test_generate_file_and_folder_of_odd_sizes_both_directions(tiny_run, tmp_path):
    ckpt = tiny_run[0] / "checkpoints" / "last.pt"
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    sizes = {"odd.png": (37, 23), "sub/wide.jpg": (61, 30)}
    for name, (w, h) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    Image.fromarray(rng.integers(0, 256, (19, 27), dtype=np.uint8), mode="L").save(folder / "grey.png")
    sizes["grey.png"] = (27, 19)
    proc = run_script("cyclegan", "generate", "--checkpoint", ckpt, "--input", folder, "--out", tmp_path / "ab",
                      "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "1 of 3 images" in proc.stdout and "converted to RGB" in proc.stdout
    for name, size in sizes.items():
        out = tmp_path / "ab" / name.replace(".jpg", ".png")
        assert Image.open(out).size == size and Image.open(out).mode == "RGB"
    written = cg_generate.main(cg_generate.parse_opt(["--checkpoint", str(ckpt), "--input", str(folder / "odd.png"),
                                                      "--out", str(tmp_path / "ba.png"), "--direction", "BtoA",
                                                      "--device", "cpu"]))
    assert written == [tmp_path / "ba.png"] and Image.open(tmp_path / "ba.png").size == (37, 23)
    ab, ba = np.asarray(Image.open(tmp_path / "ab" / "odd.png")), np.asarray(Image.open(tmp_path / "ba.png"))
    assert not np.array_equal(ab, ba)  # two different generators
    # the file equals the generator run on the padded image, cropped back
    G, _ = load_generator(ckpt, "BtoA", torch.device("cpu"))
    x = torch.from_numpy(np.asarray(Image.open(folder / "odd.png")).copy()).permute(2, 0, 1).float() / 127.5 - 1
    padded = torch.nn.functional.pad(x.unsqueeze(0), (0, 3, 0, 1), mode="reflect")
    with torch.no_grad():
        expected = ((G(padded)[0, :, :23, :37].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(ba, expected)


def test_translate_pads_to_the_multiple_and_crops_back():
    class Shift(torch.nn.Module):
        def forward(self, x):
            assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0
            return x + 1

    image = torch.rand(3, 11, 13)
    assert torch.allclose(translate(Shift(), image, 8, "cpu"), image + 1)
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7)
    y, (h, w) = pad_to_multiple(x, 4)
    assert y.shape == (1, 2, 8, 8) and (h, w) == (5, 7) and torch.equal(y[..., :5, :7], x)
    assert torch.equal(y[..., 5, :7], x[..., 3, :])  # reflected, not zero
    tiny, _ = pad_to_multiple(torch.ones(1, 3, 2, 3), 4)  # too small to mirror: replicated
    assert tiny.shape == (1, 3, 4, 4) and float(tiny.min()) == 1.0


def test_evaluate_prints_three_rows_and_appends_json(tiny_run, capsys):
    ckpt = tiny_run[0] / "checkpoints" / "last.pt"
    cg_evaluate.main(cg_evaluate.parse_opt(["--checkpoint", str(ckpt), "--device", "cpu"]))
    stdout = capsys.readouterr().out
    for row in ("G_AB(a) vs T(a)", "a vs T(a) (identity baseline)", "G_BA(G_AB(a)) vs a (cycle)"):
        assert row in stdout, stdout
    records = [json.loads(line) for line in (tiny_run[0] / "metrics.jsonl").read_text().splitlines()][-3:]
    assert [r["key"] for r in records] == ["translation", "identity", "cycle_A"]
    assert all(r["step"] == 4 and r["n"] == cg_data.EVAL_CROPS for r in records)
    crops = cg_data.held_out_crops(32)
    baseline = paired_report(crops, cg_data.hidden_mapping(crops))
    assert records[1]["psnr"] == pytest.approx(baseline["psnr"]) and records[1]["l1"] == pytest.approx(baseline["l1"])
    assert records[0]["psnr"] != pytest.approx(baseline["psnr"])


def test_folder_layout_trains_and_evaluates_cycle_only(tmp_path):
    root = write_layout(tmp_path / "ds")
    out = cg_train.main(cg_train.parse_opt(TINY + ["--data", str(root), "--max-steps", "2", "--out",
                                                   str(tmp_path / "run")]))
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["options"]["image_size"] == 32 and payload["step"] == 2
    rows = cg_evaluate.main(cg_evaluate.parse_opt(["--checkpoint", str(out / "checkpoints/last.pt"),
                                                   "--device", "cpu"]))
    assert [r["key"] for r in rows] == ["cycle_A", "cycle_B"]


def test_help_names_where_defaults_come_from(capsys):
    with pytest.raises(SystemExit) as exit_:
        cg_train.parse_opt(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("default 10, Sec. 4, eq. 3", "default 50, Sec. 4", "default 2e-4, Sec. 4", "default 1, Sec. 4",
                   "default 9 when --image-size >= 256, else 6", "286", "FRACTION OF --lambda-cycle",
                   "--resume", "--precision"):
        assert needle in text, needle


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize("case", ["missing", "no_trainB", "empty_trainA", "not_image"])
def test_bad_data_gives_one_clear_line(tmp_path, capsys, case):
    root = tmp_path / "ds"
    if case != "missing":
        write_layout(root, grey=False)
    if case == "no_trainB":
        for f in (root / "trainB").iterdir():
            f.unlink()
        (root / "trainB").rmdir()
    if case == "empty_trainA":
        for f in (root / "trainA").iterdir():
            f.unlink()
    if case == "not_image":
        (root / "trainB" / "notes.txt").write_text("hello")
    needle = {"missing": "no such folder", "no_trainB": "no trainB/ folder", "empty_trainA": "trainA",
              "not_image": "notes.txt"}[case]
    proc = in_process(capsys, lambda: cg_train.main(cg_train.parse_opt(TINY + ["--data", str(root), "--out",
                                                                             str(tmp_path / "out")])))
    line = assert_one_line_error(proc, needle)
    if case == "empty_trainA":
        assert "empty" in line


def test_checkpoint_of_another_model_is_refused(tmp_path, capsys):
    from dcgan import train as dcgan_train

    dcgan_train.main(dcgan_train.parse_opt(["--image-size", "16", "--ngf", "8", "--ndf", "8", "--batch-size", "16",
                                            "--max-steps", "1", "--device", "cpu", "--out", str(tmp_path / "dc")]))
    capsys.readouterr()
    ckpt = str(tmp_path / "dc/checkpoints/last.pt")
    for fn in (lambda: cg_generate.main(cg_generate.parse_opt(["--checkpoint", ckpt, "--input", str(tmp_path),
                                                               "--out", str(tmp_path / "x")])),
               lambda: cg_evaluate.main(cg_evaluate.parse_opt(["--checkpoint", ckpt])),
               lambda: cg_train.main(cg_train.parse_opt(TINY + ["--resume", ckpt, "--out", str(tmp_path / "y")]))):
        assert_one_line_error(in_process(capsys, fn), "'dcgan'", "cyclegan")


def test_module_form_runs_from_the_root_and_reports_bad_data(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "cyclegan.train", *TINY, "--data", str(tmp_path / "nowhere"),
                           "--out", str(tmp_path / "m")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, "no such folder")
