"""pix2pixHD end to end: one step and its losses (eq. 2, 4, the VGG term), the learning-rate
schedule, train.py (stage 1 with Sec. 3.4 features, stage 2 with --load-global and the G1
freeze), exact resume across an epoch's decay and across G1's release, generate.py on the
held-out rows, files of any size and folders, and the one-line errors."""
from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from common import distributed
from common.checkpoint import FORMAT_VERSION, atomic_save, load_file
from common.device import Precision
from common.errors import CheckpointError, UserError
from common.loop import advance_schedules
from common.vgg import vgg19_features
from pix2pixhd import cluster_features as hd_cluster
from pix2pixhd import generate as hd_generate
from pix2pixhd import segmentation as seg
from pix2pixhd import train as hd_train
from pix2pixhd.model import build_discriminator, build_encoder, build_generator, encode_input
from pix2pixhd.scenes import make_scene
from pix2pixhd.train import feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss, vgg_loss
from pix2pixhd.utils import STYLES_FILE, load_global_stage, load_styles
from tests.helpers import assert_one_line_error, run_script

# Scenes drawn at 32x64 (--load-size 64); G1 needs multiples of 2**2 (2**3 with one enhancer).
SMALL = ["--ndf", "8", "--n-blocks-global", "1", "--n-downsample-global", "2", "--nef", "4", "--n-downsample-E", "2",
         "--num-D", "2", "--load-size", "64", "--precision", "fp32", "--device", "cpu", "--log-every", "1",
         "--no-vgg-loss"]
TINY = ["--ngf", "8", "--epoch-length", "4"] + SMALL
H, W = 32, 64
# Stage 2 on top of a TINY stage 1: the outermost enhancer has ngf 4, so G1 has 8 filters, as stage 1's G.
STAGE2 = ["--ngf", "4", "--epoch-length", "2", "--n-local-enhancers", "1", "--niter-fix-global", "1",
          "--instance-feat"] + SMALL
TINY_OPTIONS = {"label_nc": 8, "ngf": 8, "n_downsample_global": 2, "n_blocks_global": 1, "ndf": 8, "num_D": 2,
                "nef": 4, "n_downsample_E": 2}


def one_line(err) -> str:
    """The message of a pytest.raises UserError: run_main prints it as the one stderr line."""
    message = str(err.value)
    assert "\n" not in message, message
    return message


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def params(m: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def changed(before: list[torch.Tensor], m: torch.nn.Module) -> bool:
    return all(not torch.equal(b, p) for b, p in zip(before, m.parameters()))


def scene_batch(seed: int = 0):
    label, inst, image = make_scene(seed, H, W)
    label, inst = torch.from_numpy(label).long()[None], torch.from_numpy(inst).long()[None]
    real = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 127.5 - 1
    return encode_input(label, inst, 8, True), inst, real


# ----------------------------------------------------------------- objective
def test_losses_are_eq_2_and_4_with_the_official_weights():
    def full(v, n=4):
        return torch.full((1, 1, 2, n // 2), float(v))

    junk = torch.full((1, 5, 3, 3), 123.0)  # intermediate maps: no part of the GAN losses
    real = [[junk, torch.tensor([[1.0, 3.0]])], [junk, full(0)]]
    fake = [[junk, torch.tensor([[0.5, -0.5]])], [junk, full(2)]]
    # D: 0.5 * sum over scales of E[(D(x) - 1)^2] + E[D(G(s))^2]
    assert float(lsgan_discriminator_loss(real, fake)) == pytest.approx(0.5 * ((0 + 4) / 2 + 0.25 + 1 + 4))
    # G: sum over scales of E[(D(G(s)) - 1)^2]
    assert float(lsgan_generator_loss(fake)) == pytest.approx((0.25 + 2.25) / 2 + 1)

    # L_FM: mean |D_k^(i)(x) - D_k^(i)(G(s))| over every map but the score, weighted 1/num_D * 4/(n_layers+1)
    fm_fake = [[torch.tensor([1.0, 3.0]), full(2), full(100)], [full(-1), full(0), full(7)]]
    fm_real = [[torch.zeros(2), full(0.5), full(-100)], [full(1), full(0), full(0)]]
    by_hand = (2 + 1.5) + (2 + 0)
    assert float(feature_matching_loss(fm_fake, fm_real, 3)) == pytest.approx(0.5 * 1.0 * by_hand)
    assert float(feature_matching_loss(fm_fake, fm_real, 1)) == pytest.approx(0.5 * 2.0 * by_hand)
    three = [fm_fake[0]] * 3, [fm_real[0]] * 3
    assert float(feature_matching_loss(*three, 3)) == pytest.approx(3.5)  # 3 scales, each weighted 1/3


def tiny_nets(instance_feat: bool = True):
    torch.manual_seed(0)
    options = {**TINY_OPTIONS, "instance_feat": instance_feat}
    return build_generator(options), build_discriminator(options), build_encoder(options)


def reference_losses(G, D, E, label_map, inst, real, vgg):
    """The losses of one step, computed here from copies of the nets, before the step."""
    G, D, E = copy.deepcopy(G), copy.deepcopy(D), copy.deepcopy(E)
    with torch.no_grad():
        fake = G(torch.cat([label_map, E(real, inst)], dim=1))
        real_out, fake_out = D(torch.cat([label_map, real], 1)), D(torch.cat([label_map, fake], 1))
        return {"loss_d": lsgan_discriminator_loss(real_out, fake_out), "G_GAN": lsgan_generator_loss(fake_out),
                "G_FM": 10 * feature_matching_loss(fake_out, real_out, 3), "G_VGG": 10 * vgg_loss(vgg, fake, real)}


def test_one_step_updates_g_d_and_e_with_fm_and_vgg_terms():
    G, D, E = tiny_nets()
    vgg = vgg19_features("relu5_1", random_init=True, without="--no-vgg-loss trains without it")
    label_map, inst, real = scene_batch(0)
    before = {"G": params(G), "D": params(D), "E": params(E)}
    expected = reference_losses(G, D, E, label_map, inst, real, vgg)
    opt_g = torch.optim.Adam([*G.parameters(), *E.parameters()], 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    losses = hd_train.train_step(G, D, E, opt_g, opt_d, label_map, inst, real, Precision("fp32", torch.device("cpu")),
                                 vgg=vgg)
    assert all(torch.isfinite(v) for v in losses.values())
    assert float(losses["G_FM"]) > 0 and float(losses["G_VGG"]) > 0
    for k, v in expected.items():  # lambda = 10 on FM and VGG, the same forward passes as D's loss
        assert float(losses[k]) == pytest.approx(float(v), rel=1e-5), k
    assert changed(before["G"], G) and changed(before["D"], D) and changed(before["E"], E)
    assert all(p.requires_grad for p in D.parameters())  # frozen only during G's step

    G, D, E = tiny_nets()
    opt_g = torch.optim.Adam([*G.parameters(), *E.parameters()], 2e-4)
    opt_d = torch.optim.Adam(D.parameters(), 2e-4)
    losses = hd_train.train_step(G, D, E, opt_g, opt_d, label_map, inst, real, Precision("fp32", torch.device("cpu")),
                                 feat_loss=False)
    assert float(losses["G_FM"]) == 0 and float(losses["G_VGG"]) == 0 and float(losses["G_GAN"]) > 0


def test_feature_matching_gives_d_no_gradient():
    G, D, _ = tiny_nets(instance_feat=False)
    label_map, _, real = scene_batch(1)
    fake = G(label_map)
    real_out = D(torch.cat([label_map, real], dim=1))  # as in train_step: outside the freeze, with D's graph
    with distributed.frozen_outside_ddp(D) as d:
        fake_out = d(torch.cat([label_map, fake], dim=1))
        loss_g = lsgan_generator_loss(fake_out) + 10 * feature_matching_loss(fake_out, real_out, 3)
    loss_g.backward()
    assert all(p.grad is None for p in D.parameters())
    assert all(p.grad is not None for p in G.parameters())
    lsgan_discriminator_loss(real_out, D(torch.cat([label_map, fake.detach()], 1))).backward()  # graph still there
    assert all(p.grad is not None for p in D.parameters())
    # the check can fail: matching against the real features without the detach would reach D
    D.zero_grad(set_to_none=True)
    real_out = D(torch.cat([label_map, real], dim=1))
    F.l1_loss(D(torch.cat([label_map, fake.detach()], 1))[0][0].detach(), real_out[0][0]).backward()
    assert D.discriminators[0].layers[0][0].weight.grad is not None


# ------------------------------------------------------------------ schedule
def official_rates(n_constant: int, decay: int) -> list[float]:
    """The official train.py: `for epoch in 1..niter+niter_decay: train; if epoch > niter:
    lr -= lr0 / niter_decay` (update_learning_rate), as factors of lr0 per 0-based epoch."""
    lr, rates = 1.0, []
    for epoch in range(1, n_constant + decay + 1):
        rates.append(lr)
        if epoch > n_constant:
            lr -= 1.0 / decay
    return rates


@pytest.mark.parametrize("epochs, decay", [(5, 3), (200, 100), (4, 4), (3, 0)])
def test_linear_decay_reaches_zero_as_the_official_update_learning_rate(epochs, decay):
    """train.py's LambdaLR, brought to each epoch before its first step as the loop does, gives
    each epoch the official rate; after the last epoch the rate is the last epoch's."""
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=2e-4)
    s = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: hd_train.linear_decay(e, epochs, decay))
    lrs = []
    for epoch in range(epochs):
        advance_schedules([s], epoch)  # what TrainLoop does before the epoch's first step
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
    assert lrs == [2e-4 * hd_train.linear_decay(e, epochs, decay) for e in range(epochs)]  # epoch e gets factor(e)
    rates = [lr / 2e-4 for lr in lrs]
    assert rates == pytest.approx(official_rates(epochs - decay, decay))
    assert rates[:epochs - decay + 1] == [1.0] * min(epochs, epochs - decay + 1)
    if decay:
        assert rates[-1] == pytest.approx(1 / decay)
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-4 * rates[-1])  # the final checkpoint's rate
    assert s.state_dict()["last_epoch"] == epochs - 1


def test_help_names_the_paper_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        hd_train.parse_opt(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "feature matching loss and the VGG loss (default 10)" in text
    assert "discriminators on the image pyramid (default 3, Sec. 3.2" in text
    assert "G1's residual blocks (default 9)" in text
    opt = hd_train.parse_opt([])
    assert (opt.lambda_feat, opt.num_D, opt.n_blocks_global, opt.ngf, opt.lr, opt.beta1, opt.batch_size,
            opt.epochs, opt.decay_epochs) == (10.0, 3, 9, 64, 2e-4, 0.5, 1, 200, 100)


# ------------------------------------------------------------- end to end
@pytest.fixture(scope="session")
def stage1(tmp_path_factory):
    """Stage 1 (G1 alone) with Sec. 3.4 features, one epoch of 4 steps, run as users do."""
    out = tmp_path_factory.mktemp("hd1") / "run"
    proc = run_script("pix2pixhd", "train", *TINY, "--instance-feat", "--max-steps", "4", "--sample-every", "2",
                      "--seed", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_end_to_end_writes_checkpoint_grid_styles_and_counts(stage1):
    out, proc = stage1
    options = json.loads((out / "options.json").read_text())
    G, D, E = build_generator(options), build_discriminator(options), build_encoder(options)
    assert f"G {n_params(G):,} / D (2 scales) {n_params(D):,} / E {n_params(E):,} parameters" in proc.stdout
    assert "losses: LSGAN + FM" in proc.stdout and "VGG" not in proc.stdout.split("losses:")[1].splitlines()[0]
    payload = load_file(out / "checkpoints/last.pt")
    assert payload["step"] == 4 and set(payload["models"]) == {"G", "D", "E"}
    assert set(payload["states"]) == {"lr_G", "lr_D", "global_freeze"}
    assert payload["states"]["lr_G"]["last_epoch"] == 0  # LambdaLR at epoch 0: the run ended with its 4th step
    for name, net in (("G", G), ("D", D), ("E", E)):
        assert {k: tuple(v.shape) for k, v in payload["models"][name].items()} == \
               {k: tuple(v.shape) for k, v in net.state_dict().items()}
    for step in (2, 4):  # three columns (labels | output | real) of 4 held-out 32x64 scenes
        assert Image.open(out / f"samples/samples_{step:07d}.png").size == (3 * W + 4 * 2, 4 * H + 5 * 2)
    assert any(p.name.startswith("events.out.tfevents") for p in out.iterdir())
    assert options["lambda_feat"] == 10.0 and options["n_local_enhancers"] == 0 and options["instance_feat"]
    styles = load_styles(out / STYLES_FILE)
    assert styles and set(styles) <= set(range(8))
    for c, centres in styles.items():
        assert centres.ndim == 2 and centres.shape[1] == 3 and 1 <= len(centres) <= 10, (c, centres.shape)
        assert np.isfinite(centres).all() and np.abs(centres).max() <= 1  # E ends in a Tanh
    assert "k-means centres" in proc.stdout


def same_run(path_a, path_b, nets=("G", "D")):
    a, b = load_file(path_a), load_file(path_b)
    assert a["step"] == b["step"]
    for net in nets:
        for key, value in a["models"][net].items():
            assert torch.equal(value, b["models"][net][key]), f"{net}.{key} differs after resume"
    for opt in ("G", "D"):
        sa, sb = a["optimizers"][opt]["state"], b["optimizers"][opt]["state"]
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) and torch.equal(sa[k]["step"], sb[k]["step"])
        assert a["optimizers"][opt]["param_groups"][0]["lr"] == b["optimizers"][opt]["param_groups"][0]["lr"]
    return a, b


def main(args):
    return hd_train.main(hd_train.parse_opt([str(a) for a in args]))


def test_resume_is_exact_across_an_epoch_and_the_decay(tmp_path):
    """5 steps straight == 3, stop, resume, 2 more: epochs of 2 steps, the rate halved in the
    third (pix2pixHD's decay: 1, 1, 1/2), new flips each epoch, E's features."""
    common = TINY + ["--instance-feat", "--epoch-length", "2", "--epochs", "3", "--decay-epochs", "2",
                     "--seed", "3", "--sample-every", "100", "--save-every", "100"]
    main(common + ["--max-steps", "5", "--out", tmp_path / "a"])
    main(common + ["--max-steps", "3", "--out", tmp_path / "b"])
    shutil.copy(tmp_path / "b/checkpoints/last.pt", tmp_path / "step3.pt")
    main(common + ["--max-steps", "5", "--out", tmp_path / "b", "--resume", "auto"])
    a, _ = same_run(tmp_path / "a/checkpoints/last.pt", tmp_path / "b/checkpoints/last.pt", ("G", "D", "E"))
    assert a["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    step3 = load_file(tmp_path / "step3.pt")["models"]["G"]
    assert not torch.equal(step3["model.1.weight"], a["models"]["G"]["model.1.weight"])  # the check can fail


@pytest.fixture(scope="session")
def stage2(stage1, tmp_path_factory):
    """Stage 2 from stage 1's G: 4 steps straight, and the same 4 steps one at a time with
    --resume auto, each step's checkpoint kept. Epochs of 2 steps: G1 fixed in epoch 0
    (steps 1-2), released at the start of epoch 1 (step 3)."""
    root = tmp_path_factory.mktemp("hd2")
    common = STAGE2 + ["--load-global", stage1[0] / "checkpoints/last.pt", "--seed", "5", "--sample-every", "100",
                       "--save-every", "100"]
    main(common + ["--max-steps", "4", "--out", root / "straight"])
    for step in range(1, 5):
        main(common + ["--max-steps", step, "--out", root / "chain", "--resume", "auto"])
        shutil.copy(root / "chain/checkpoints/last.pt", root / f"step{step}.pt")
    return root


def test_resume_is_exact_across_g1s_release(stage2):
    """The chain resumed before the release, at it (end of epoch 0) and after it."""
    a, _ = same_run(stage2 / "straight/checkpoints/last.pt", stage2 / "step4.pt", ("G", "D", "E"))
    assert a["states"]["global_freeze"]["released"]


def test_stage_2_loads_g1_keeps_it_fixed_then_releases_it(stage1, stage2):
    g_stage1 = load_file(stage1[0] / "checkpoints/last.pt")["models"]["G"]
    steps = {s: load_file(stage2 / f"step{s}.pt") for s in range(1, 5)}
    g1_keys = [k for k in g_stage1 if not k.startswith("output.")]
    assert g1_keys and len(g1_keys) < len(g_stage1)
    for s in (1, 2):  # epoch 0: G1 is stage 1's G, bit for bit; the enhancer learns
        g = steps[s]["models"]["G"]
        assert all(torch.equal(g[f"global_generator.{k}"], g_stage1[k]) for k in g1_keys), s
        assert not steps[s]["states"]["global_freeze"]["released"]
    enh = [k for k in steps[1]["models"]["G"] if k.startswith("enhancers.0.") and k.endswith("weight")]
    assert enh and all(not torch.equal(steps[1]["models"]["G"][k], steps[2]["models"]["G"][k]) for k in enh)
    n_g1, n_enh = len(g1_keys), len(steps[1]["models"]["G"]) - len(g1_keys)
    n_e = len(steps[1]["models"]["E"])
    assert len(steps[2]["optimizers"]["G"]["state"]) == n_enh + n_e  # Adam never saw G1's parameters
    for s in (3, 4):  # epoch 1: released, G1 learns too
        g = steps[s]["models"]["G"]
        assert steps[s]["states"]["global_freeze"]["released"]
        assert all(not torch.equal(g[f"global_generator.{k}"], g_stage1[k]) for k in g1_keys if k.endswith("weight"))
    state3 = steps[3]["optimizers"]["G"]["state"]
    assert len(state3) == n_g1 + n_enh + n_e
    assert all(float(v["step"]) == 1 for v in state3.values())  # a fresh Adam over every parameter on release
    assert all(float(v["step"]) == 2 for v in steps[2]["optimizers"]["G"]["state"].values())


def test_load_global_refuses_a_stage_2_or_another_models_checkpoint(stage1, stage2, tmp_path):
    """The errors are CheckpointErrors, one line each (run_main prints them; a train.py error as
    users see it is test_missing_vgg_weights_stop_the_run_with_one_line's)."""
    args = STAGE2 + ["--max-steps", "1", "--out", tmp_path / "o"]
    other = atomic_save({"format": FORMAT_VERSION, "model_name": "pix2pix", "step": 1, "epoch": 0,
                         "models": {"G": {}}, "options": {"n_local_enhancers": 0}}, tmp_path / "pix2pix.pt")
    for path in (stage2 / "step4.pt", other):
        with pytest.raises(CheckpointError, match="not a stage-1 pix2pixhd checkpoint") as err:
            main(args + ["--load-global", path])
        assert path.name in one_line(err)
    assert not (tmp_path / "o").exists()
    # a stage-1 G of another width: the reason, in one line
    options = {**TINY_OPTIONS, "instance_feat": True, "n_local_enhancers": 1, "ngf": 8}
    G, D, E = build_generator(options), build_discriminator(options), build_encoder(options)
    with pytest.raises(CheckpointError, match="does not fit this G1") as err:
        load_global_stage(G, D, E, str(stage1[0] / "checkpoints/last.pt"))
    assert "\n" not in str(err.value)
    path = str(stage1[0] / "checkpoints/last.pt")
    assert load_global_stage(build_generator({**options, "ngf": 4}), D, E, path) == \
        f"loaded G1, D, E from stage 1 ({path})"


def test_missing_vgg_weights_stop_the_run_with_one_line(tmp_path, monkeypatch):
    no_vgg = [a for a in TINY if a != "--no-vgg-loss"]
    proc = run_script("pix2pixhd", "train", *no_vgg, "--vgg-weights", tmp_path / "missing.pth", "--max-steps", "1",
                      "--out", tmp_path / "o")
    assert_one_line_error(proc, "VGG19 weights", "missing.pth", "no such file", "--no-vgg-loss")
    assert "PSNR" not in proc.stderr  # the super-resolution folders' hint is theirs
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # not the user's cache: nothing there
    with pytest.raises(UserError) as err:
        main(no_vgg + ["--max-steps", "1", "--out", tmp_path / "o2"])
    assert all(s in one_line(err) for s in ("VGG19 weights", "vgg19-dcbb9e9d.pth", "--vgg-weights PATH",
                                            "--no-vgg-loss"))
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()  # stopped before anything was written


# -------------------------------------------------------------- generate.py
@pytest.fixture(scope="session")
def plain_run(tmp_path_factory):
    """Stage 1 without Sec. 3.4 features: one look per label map."""
    out = tmp_path_factory.mktemp("hdplain") / "run"
    main(TINY + ["--max-steps", "1", "--out", out])
    return out


def generate(*args):
    return hd_generate.main(hd_generate.parse_opt([str(a) for a in [*args, "--device", "cpu"]]))


def test_generate_held_out_rows_and_several_looks(stage1, tmp_path, capsys):
    ckpt = stage1[0] / "checkpoints/last.pt"
    generate("--checkpoint", ckpt, "--out", tmp_path / "rows.png", "--n", "2")
    assert "labels | output | real" in capsys.readouterr().out
    assert Image.open(tmp_path / "rows.png").size == (3 * W + 4 * 2, 2 * H + 3 * 2)
    generate("--checkpoint", ckpt, "--out", tmp_path / "looks.png", "--n", "2", "--n-styles", "3")
    grid = np.asarray(Image.open(tmp_path / "looks.png").convert("RGB"))
    assert grid.shape[:2] == (2 * H + 3 * 2, 4 * W + 5 * 2)  # labels | cluster=0 | cluster=1 | cluster=2
    looks = [grid[2:2 + H, 2 + c * (W + 2):2 + c * (W + 2) + W] for c in (1, 2, 3)]
    assert not np.array_equal(looks[0], looks[1]) or not np.array_equal(looks[0], looks[2])


def write_maps(folder, name, h, w, seed, *, inst: bool = True):
    label, instance, _ = make_scene(seed, h, w)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label.astype(np.uint8)).save(folder / f"{name}.png")
    if inst:
        (folder.parent / "inst").mkdir(exist_ok=True)
        assert instance.max() > 255  # a 16-bit map really needs 16 bits
        Image.fromarray(instance.astype(np.uint16)).save(folder.parent / "inst" / f"{name}.png")
    return folder / f"{name}.png", folder.parent / "inst" / f"{name}.png"


def test_generate_files_of_any_size_and_folders(stage1, plain_run, tmp_path, capsys):
    label, inst = write_maps(tmp_path / "one", "odd", 50, 70, seed=7)
    assert Image.open(inst).mode.startswith("I;16")
    ckpt = stage1[0] / "checkpoints/last.pt"
    generate("--checkpoint", ckpt, "--label", label, "--inst", inst, "--out", tmp_path / "odd_out.png",
             "--style", "cluster=1")
    assert Image.open(tmp_path / "odd_out.png").size == (70, 50)
    write_maps(tmp_path / "many", "a", 40, 60, seed=8, inst=False)
    write_maps(tmp_path / "many", "b", 33, 47, seed=9, inst=False)
    generate("--checkpoint", plain_run / "checkpoints/last.pt", "--label", tmp_path / "many", "--out",
             tmp_path / "many_out")
    assert "no --inst given" in capsys.readouterr().out
    assert Image.open(tmp_path / "many_out/a.png").size == (60, 40)
    assert Image.open(tmp_path / "many_out/b.png").size == (47, 33)


def test_generate_bad_input_gives_one_clear_line(stage1, plain_run, tmp_path):
    """One case as users see it (a subprocess: no traceback, one stderr line), the others as the
    UserError whose message is that line."""
    ckpt = stage1[0] / "checkpoints/last.pt"

    def error(*args) -> str:
        with pytest.raises(UserError) as err:
            generate("--out", tmp_path / "x.png", *args)
        return one_line(err)

    label, inst = write_maps(tmp_path / "ok", "s", 40, 60, seed=3)
    bad = np.asarray(Image.open(label)).copy()
    bad[5, 5] = 8
    Image.fromarray(bad).save(tmp_path / "bad_label.png")
    proc = run_script("pix2pixhd", "generate", "--device", "cpu", "--out", tmp_path / "x.png", "--checkpoint", ckpt,
                      "--label", tmp_path / "bad_label.png")
    assert_one_line_error(proc, "bad_label.png", "label value 8", "0..7")
    _, small_inst = write_maps(tmp_path / "small", "t", 40, 56, seed=3)
    assert all(s in error("--checkpoint", ckpt, "--label", label, "--inst", small_inst) for s in ("is 60x40", "56x40"))
    assert "without --instance-feat" in error("--checkpoint", plain_run / "checkpoints/last.pt", "--style", "cluster=0")
    assert "nowhere.png" in error("--checkpoint", ckpt, "--label", tmp_path / "nowhere.png")
    other = atomic_save({"format": FORMAT_VERSION, "model_name": "pix2pix", "step": 1, "epoch": 0,
                         "models": {"G": {}}, "options": {}}, tmp_path / "pix2pix.pt")
    assert all(s in error("--checkpoint", other) for s in ("'pix2pix'", "not of 'pix2pixhd'"))


# --------------------------------------------------------- cluster_features.py
def test_cluster_features_is_the_step_training_ends_with(stage1, plain_run, tmp_path):
    """Sec. 3.4 as a step of its own: on stage 1's checkpoint the script writes the centres
    train.py wrote when it ended; a run without them gets generate.py's one line naming the
    script, and works once the script (run as users do, default --out) has written them."""
    ckpt = stage1[0] / "checkpoints/last.pt"

    def cluster(*args):
        return hd_cluster.main(hd_cluster.parse_opt([str(a) for a in ["--checkpoint", *args, "--device", "cpu"]]))

    ours, trained = load_styles(cluster(ckpt, "--out", tmp_path / "c.npz")), load_styles(stage1[0] / STYLES_FILE)
    assert ours.keys() == trained.keys()  # E ran channels_last in training: the same centres to float rounding
    assert all(np.allclose(ours[c], trained[c], rtol=1e-4, atol=1e-5) for c in ours)
    one = load_styles(cluster(ckpt, "--out", tmp_path / "k1.npz", "--k", "1"))
    assert one.keys() == ours.keys() and all(len(v) == 1 for v in one.values())
    assert any(len(v) > 1 for v in ours.values())  # the check can fail: k = 10 gives more than one look
    with pytest.raises(UserError, match="without --instance-feat"):
        cluster(plain_run / "checkpoints/last.pt")

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(ckpt, run / "checkpoints/last.pt")
    with pytest.raises(UserError, match="no k-means styles .* cluster_features.py"):
        generate("--checkpoint", run / "checkpoints/last.pt", "--out", tmp_path / "x.png")
    proc = run_script("pix2pixhd", "cluster_features", "--checkpoint", run / "checkpoints/last.pt", "--device", "cpu")
    assert proc.returncode == 0 and "k-means centres" in proc.stdout, proc.stderr
    assert load_styles(run / STYLES_FILE).keys() == trained.keys()
    generate("--checkpoint", run / "checkpoints/last.pt", "--out", tmp_path / "rows.png", "--n", "1")
    assert (tmp_path / "rows.png").is_file()


# -------------------------------------------------------------- evaluate.py
@pytest.fixture(scope="session")
def segmenter_cache(tmp_path_factory):
    """A temporary folder for the scene segmenter of evaluate.py and --eval-every (never
    ~/.cache; the FID's digit classifier stays in the machine's cache, as in the other folders'
    tests), holding a 32x64 segmenter under the name load_segmenter looks up. Its weights come
    from a shorter training than that name's settings (test_pix2pixhd_segmentation.py's 80
    steps, which beat the majority class by far): the segmenter's own training and cache are
    tested there, and training it at its defaults here took most of this file's time."""
    cache = tmp_path_factory.mktemp("segmenter_cache")
    settings = seg.cache_settings(H, W)
    model = seg.load_segmenter(H, W, n_scenes=48, steps=80, batch_size=8, verbose=False,  # trained once a session
                               directory=tmp_path_factory.getbasetemp() / "pix2pixhd_small_segmenter")
    atomic_save({"model": model.state_dict(), "version": seg.VERSION, "settings": settings, "train_seconds": 0.0},
                seg.cache_path(settings, cache))
    return cache


def test_evaluate_scores_generated_beside_real_scenes(stage1, segmenter_cache, tmp_path, monkeypatch):
    """Sec. 4.1 at small scale: the segmenter (cached, at 32x64) reads the real held-out scenes
    well and a 4-step G's images badly; both records name it."""
    from pix2pixhd import evaluate as hd_evaluate

    monkeypatch.setattr(seg, "cache_dir", lambda: segmenter_cache)
    monkeypatch.setattr(seg, "train_segmenter", lambda **kw: pytest.fail("not read from the cache"))
    ckpt = stage1[0] / "checkpoints/last.pt"
    records = hd_evaluate.main(hd_evaluate.parse_opt(["--checkpoint", str(ckpt), "--n", "16", "--device", "cpu",
                                                      "--jsonl", str(tmp_path / "m.jsonl")]))
    generated, real = records
    assert generated["what"] == "generated" and generated["step"] == 4 and generated["style"] == "random"
    assert real["pixel_acc"] > 0.6 and real["pixel_acc"] > generated["pixel_acc"] + 0.2
    assert real["fid"] < generated["fid"]  # other real scenes are closer than a 4-step G's images
    assert generated["segmenter"] == real["segmenter"] and "_32x64_" in real["segmenter"]
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 2
    assert (segmenter_cache / real["segmenter"]).is_file()  # the cached segmenter it read


def test_evaluate_refuses_a_folder_trained_model_in_one_line(plain_run, tmp_path):
    """The scene segmenter knows the embedded scenes only: a Cityscapes-style run is refused."""
    payload = load_file(plain_run / "checkpoints/last.pt")
    payload["options"]["data"] = str(tmp_path / "cityscapes")
    source = atomic_save(payload, tmp_path / "src.pt")
    proc = run_script("pix2pixhd", "evaluate", "--checkpoint", source, "--device", "cpu")
    assert_one_line_error(proc, "scene segmenter", "PSPNet")


def test_eval_every_logs_segmentation_scores_during_training(segmenter_cache, tmp_path, monkeypatch):
    """--eval-every: the same Sec. 4.1 scores as evaluate.py, to metrics.jsonl, mid-run and once
    more at the end (TrainLoop's evaluate)."""
    monkeypatch.setattr(seg, "cache_dir", lambda: segmenter_cache)
    monkeypatch.setattr(seg, "train_segmenter", lambda **kw: pytest.fail("not read from the cache"))
    out = tmp_path / "run"
    main(TINY + ["--max-steps", "3", "--eval-every", "2", "--eval-n", "4", "--out", out])
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 3]
    for r in records:
        assert 0.0 <= r["pixel_acc"] <= 1.0 and 0.0 <= r["mean_iou"] <= 1.0 and r["n"] == 4


def test_label_nc_0_translates_plain_images_end_to_end(tmp_path):
    """--label-nc 0: RGB inputs (train_A/) to photos (train_B/), as pix2pix does; generate.py then
    takes an RGB file of any size (no instance map) and gives an image of its size."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub in ("train_A", "train_B"):
        (tmp_path / "data" / sub).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(tmp_path / "data" / sub / f"{k}.png")
    out = tmp_path / "run"
    args = ["--ngf", "8"] + SMALL
    main(args + ["--data", tmp_path / "data", "--label-nc", "0", "--no-instance", "--max-steps", "1", "--out", out])
    assert json.loads((out / "options.json").read_text())["label_nc"] == 0
    Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    generate("--checkpoint", out / "checkpoints/last.pt", "--label", tmp_path / "photo.png", "--out", tmp_path / "o.png")
    assert Image.open(tmp_path / "o.png").size == (50, 30)
