"""SRGAN's two training stages: SRResNet-MSE, then SRGAN from it; losses, exact resume in both
stages (across the gan stage's 1e-4 -> 1e-5 step), the VGG weights rule; its data (HR crops with
bicubic LR, given LR/HR pairs, held-out photos), the Y-channel measure beside bicubic, tiling."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.optim.lr_scheduler import MultiStepLR

from common.checkpoint import atomic_save, load_file
from common.errors import CheckpointError, DataError, UserError
from common.loop import advance_schedules
from srgan import dataset as sr_data
from srgan import generate as sr_generate
from srgan import train as sr_train
from srgan import utils as sr_utils
from srgan.model import SRResNet
from srgan.utils import load_init
from tests.helpers import assert_one_line_error, run_script, write_random_vgg

TINY = ["--features", "8", "--blocks", "2", "--batch-size", "2", "--precision", "fp32", "--device", "cpu",
        "--log-every", "1", "--sample-every", "100", "--save-every", "100", "--epoch-length", "6"]


@pytest.fixture(scope="module")
def random_vgg(tmp_path_factory):
    return write_random_vgg(tmp_path_factory.mktemp("vgg"))


@pytest.fixture(scope="module")
def psnr_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("srgan") / "psnr"
    sr_train.main(sr_train.parse_opt(TINY + ["--hr-size", "32", "--max-steps", "3", "--eval-every", "3",
                                             "--out", str(out)]))
    return out


def test_losses_by_hand():
    sr, hr = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert float(sr_train.mse_loss(sr, hr)) == pytest.approx(0.25)
    identity = lambda x: x  # noqa: E731 - a stand-in feature map: the rescale alone shows
    assert float(sr_train.vgg_content_loss(identity, sr, hr)) == pytest.approx(0.25 / 12.75 ** 2)
    real, fake = torch.tensor([[1.5]]), torch.tensor([[-0.5]])
    by_hand = -(torch.log(torch.sigmoid(real)) + torch.log(1 - torch.sigmoid(fake)))
    assert torch.allclose(sr_train.discriminator_loss(real, fake), by_hand.mean())
    assert torch.allclose(sr_train.adversarial_loss(fake), -torch.log(torch.sigmoid(fake)).mean())


def test_psnr_stage_writes_g_only_with_its_stage(psnr_run):
    payload = load_file(psnr_run / "checkpoints/last.pt")
    assert payload["step"] == 3 and set(payload["models"]) == {"G"} and payload["options"]["stage"] == "psnr"
    assert payload["options"]["iters"] == 1_000_000  # the paper's 10^6 SRResNet updates, resolved
    assert (psnr_run / "samples/samples_0000003.png").is_file()


def weights(path):
    payload = load_file(path)
    return payload["models"], payload["optimizers"]


def same_run(a, b):
    (ma, oa), (mb, ob) = weights(a), weights(b)
    for net in ma:
        for key in ma[net]:
            assert torch.equal(ma[net][key], mb[net][key]), f"{net}.{key} differs after resume"
        for va, vb in zip(oa[net]["state"].values(), ob[net]["state"].values()):
            assert torch.equal(va["exp_avg"], vb["exp_avg"])
    return ma


def test_resume_is_exact_in_the_psnr_stage(tmp_path):
    common = TINY + ["--hr-size", "16", "--seed", "5"]
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "a")]))
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "4", "--out", str(tmp_path / "b"), "--resume", "auto"]))
    ma = same_run(tmp_path / "a/checkpoints/last.pt", tmp_path / "b/checkpoints/last.pt")
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "3", "--out", str(tmp_path / "c")]))
    mc, _ = weights(tmp_path / "c/checkpoints/last.pt")
    assert not torch.equal(ma["G"]["head.0.weight"], mc["G"]["head.0.weight"])  # the check can fail


def test_gan_stage_starts_from_the_psnr_g_and_resumes_exactly_across_the_lr_step(psnr_run, random_vgg, tmp_path):
    init = psnr_run / "checkpoints/last.pt"
    common = TINY + ["--stage", "gan", "--init", str(init), "--vgg-weights", str(random_vgg), "--hr-size", "32",
                     "--iters", "4", "--seed", "6"]  # lr 1e-4 for steps 1-2, 1e-5 for 3-4
    first = sr_train.parse_opt(common + ["--max-steps", "1", "--out", str(tmp_path / "one")])
    sr_train.main(first)
    start = load_file(init)["models"]["G"]
    after_one = load_file(tmp_path / "one/checkpoints/last.pt")["models"]["G"]
    assert not torch.equal(start["head.0.weight"], after_one["head.0.weight"])
    assert torch.allclose(start["head.0.weight"], after_one["head.0.weight"], atol=2e-4)  # one Adam step from it
    sr_train.main(sr_train.parse_opt(common + ["--out", str(tmp_path / "a")]))
    sr_train.main(sr_train.parse_opt(common + ["--max-steps", "2", "--out", str(tmp_path / "b")]))
    sr_train.main(sr_train.parse_opt(common + ["--out", str(tmp_path / "b"), "--resume", "auto"]))
    same_run(tmp_path / "a/checkpoints/last.pt", tmp_path / "b/checkpoints/last.pt")
    payload = load_file(tmp_path / "a/checkpoints/last.pt")
    assert set(payload["models"]) == {"G", "D"} and payload["options"]["stage"] == "gan"
    assert payload["optimizers"]["G"]["param_groups"][0]["lr"] == pytest.approx(1e-5)


def test_gan_stage_needs_an_srresnet_and_the_vgg_weights(psnr_run, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        sr_train.parse_opt(TINY + ["--stage", "gan", "--out", str(tmp_path / "x")])
    assert stop.value.code == 2 and "--init PATH" in capsys.readouterr().err
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    proc = run_script("srgan", "train", *TINY, "--stage", "gan", "--init", psnr_run / "checkpoints/last.pt",
                      "--out", tmp_path / "novgg")
    assert_one_line_error(proc, "vgg19-dcbb9e9d.pth", "--vgg-weights PATH")
    assert not (tmp_path / "novgg").exists()  # stopped before anything was written


def test_init_from_a_gan_stage_or_another_model_is_refused(psnr_run, random_vgg, tmp_path):
    payload = load_file(psnr_run / "checkpoints/last.pt")
    atomic_save({**payload, "options": {**payload["options"], "stage": "gan"}}, tmp_path / "gan.pt")
    atomic_save({**payload, "model_name": "dcgan"}, tmp_path / "dcgan.pt")
    for init in ("gan.pt", "dcgan.pt"):
        opt = sr_train.parse_opt(TINY + ["--stage", "gan", "--init", str(tmp_path / init), "--vgg-weights",
                                         str(random_vgg), "--hr-size", "32", "--out", str(tmp_path / "o")])
        with pytest.raises(CheckpointError, match=f"--init .*{init}: not a --stage psnr checkpoint of srgan"):
            sr_train.main(opt)
    G = SRResNet(3, 8, 2, 4)
    load_init(G, psnr_run / "checkpoints/last.pt")  # the psnr stage's own G is accepted, exactly
    assert all(torch.equal(v, payload["models"]["G"][k]) for k, v in G.state_dict().items())
    with pytest.raises(CheckpointError, match="does not match"):
        load_init(SRResNet(3, 16, 2, 4), psnr_run / "checkpoints/last.pt")


def test_evaluate_reports_y_psnr_beside_bicubic(psnr_run):
    proc = run_script("srgan", "evaluate", "--checkpoint", psnr_run / "checkpoints/last.pt", "--device", "cpu",
                      "--crops", psnr_run / "crops.png")
    assert proc.returncode == 0, proc.stderr
    assert "SRGAN G (psnr stage, step 3): PSNR(Y)" in proc.stdout and "bicubic: PSNR(Y)" in proc.stdout
    import json

    lines = (psnr_run / "metrics.jsonl").read_text().splitlines()
    during_training, (g, bicubic) = json.loads(lines[0]), [json.loads(line) for line in lines[-2:]]
    expected = []
    for lr, hr in sr_data.held_out_images(4):  # the same figure computed by hand
        up = (torch.nn.functional.interpolate(lr.unsqueeze(0), scale_factor=4, mode="bicubic") * 2 - 1).clamp(-1, 1)
        expected.append(y_psnr_by_hand(up[0], hr, 4))
    assert bicubic["psnr_y"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    assert g["stage"] == "psnr" and g["psnr_y"] < bicubic["psnr_y"]  # three steps of training are not bicubic yet
    # train.py's --eval-every at step 3 measured that same G as evaluate.py does
    assert during_training["step"] == 3 and during_training["psnr"] == pytest.approx(g["psnr_y"], abs=1e-6)
    assert during_training["ssim"] == pytest.approx(g["ssim_y"], abs=1e-6)
    assert f"bicubic {bicubic['psnr_y']:.2f} dB" in during_training["pairs"]
    assert (psnr_run / "crops.png").is_file()


def test_generate_upscales_files_and_folders_and_tiles_without_seams(psnr_run, tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    Image.fromarray(rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)).save(tmp_path / "in/odd.png")
    Image.fromarray(rng.integers(0, 256, (9, 7), dtype=np.uint8)).save(tmp_path / "in/grey.png")
    ckpt = psnr_run / "checkpoints/last.pt"
    proc = run_script("srgan", "generate", "--checkpoint", ckpt, "--input", tmp_path / "in", "--out", tmp_path / "whole",
                      "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "1 of 2 images" in proc.stdout
    assert Image.open(tmp_path / "whole/odd.png").size == (180, 148) and Image.open(tmp_path / "whole/grey.png").size == (28, 36)
    # tiny G (B = 2) reaches about 12 LR pixels: 42-pixel tiles (3 x 3) with 13 of overlap give the same image
    sr_generate.main(sr_generate.parse_opt(["--checkpoint", str(ckpt), "--input", str(tmp_path / "in/odd.png"),
                                            "--out", str(tmp_path / "tiled.png"), "--tile", "42",
                                            "--tile-overlap", "13", "--device", "cpu"]))
    whole, tiled = (np.asarray(Image.open(p)).astype(int) for p in (tmp_path / "whole/odd.png", tmp_path / "tiled.png"))
    assert np.abs(whole - tiled).max() <= 1  # 8-bit rounding at most


# ------------------------------------------------------------------ data (srgan/dataset.py)
def test_bicubic_downsample_is_antialiased_and_exact_in_size():
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: a point-sampling resize would keep them black or white
    lr = sr_data.bicubic_downsample(stripes, 4)
    assert lr.shape == (16, 16, 3)
    assert 100 < lr.mean() < 155 and lr.std() < 20  # filtered to grey, as MATLAB's imresize does
    with pytest.raises(ValueError, match="exactly"):
        sr_data.bicubic_downsample(np.zeros((30, 32, 3), np.uint8), 4)
    assert sr_data.modcrop(np.zeros((30, 33, 3)), 4).shape == (28, 32, 3)


def test_hr_crops_pair_lr_with_hr_and_are_keyed():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (50, 70, 3), dtype=np.uint8) for _ in range(3)]
    ds = sr_data.HRCrops(images, hr_size=24, scale=4, length=5, seed=1)
    lr, hr = ds[(2, 0)]
    assert lr.shape == (3, 6, 6) and hr.shape == (3, 24, 24)
    assert float(lr.min()) >= 0 and float(lr.max()) <= 1 and float(hr.min()) >= -1 and float(hr.max()) <= 1
    assert float(hr.min()) < 0  # HR in [-1, 1] (Sec. 3.2), LR in [0, 1]
    hr_uint8 = ((hr + 1) * 127.5).round().permute(1, 2, 0).byte().numpy()
    assert torch.allclose(lr, sr_data.to_unit_tensor(sr_data.bicubic_downsample(hr_uint8, 4)), atol=1 / 255 + 1e-6)
    assert torch.equal(ds[(2, 0)][1], hr) and not torch.equal(ds[(2, 1)][1], hr)
    with pytest.raises(DataError, match="multiple of the scale"):
        sr_data.HRCrops(images, hr_size=30, scale=4)
    with pytest.raises(DataError, match="smaller than the HR crop"):
        sr_data.HRCrops(images, hr_size=64, scale=4)[(0, 0)]


def test_flips_and_rotations_keep_the_content():
    image = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    ds = sr_data.HRCrops([image], hr_size=16, scale=4, length=1)
    seen = set()
    for epoch in range(12):
        _, hr = ds[(0, epoch)]
        back = ((hr + 1) * 127.5).round().permute(1, 2, 0).byte().numpy()
        assert sorted(back.ravel().tolist()) == sorted(image.ravel().tolist())  # a permutation of the pixels
        seen.add(back.tobytes())
    assert len(seen) > 2  # several of the 8 orientations over 12 epochs


def test_held_out_photos_and_folders(tmp_path):
    pairs = sr_data.held_out_images(4, max_side=64)
    assert len(pairs) == 2
    for lr, hr in pairs:
        assert hr.shape[1] == 4 * lr.shape[1] and hr.shape[2] == 4 * lr.shape[2] and hr.shape[1] <= 64
        assert float(hr.min()) >= -1 and float(hr.min()) < 0  # the measure's range
    assert len(sr_data.training_photos()) == 8  # the ten bundled photos minus the two held out
    Image.new("RGB", (41, 38)).save(tmp_path / "a.png")
    pairs, what = sr_data.evaluation_pairs(str(tmp_path), 4)
    assert what == f"1 images of {tmp_path}" and pairs[0][1].shape == (3, 36, 40)  # modcrop: 38x41 -> 36x40
    opt = SimpleNamespace(data=str(tmp_path / "missing"), lr_dir=None, hr_size=16, scale=4, seed=0, epoch_length=4)
    with pytest.raises(DataError, match="no such file"):
        sr_data.build_dataset(opt)


def write_pair_folders(tmp_path, sizes, scale=4, suffix="x4"):
    """HR folder and LR folder (DIV2K naming) made from random HR images by bicubic_downsample."""
    rng = np.random.default_rng(3)
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    hr_dir.mkdir(), lr_dir.mkdir()
    for i, (h, w) in enumerate(sizes):
        hr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(hr).save(hr_dir / f"{i:04d}.png")
        Image.fromarray(sr_data.bicubic_downsample(sr_data.modcrop(hr, scale), scale)).save(
            lr_dir / f"{i:04d}{suffix}.png")
    return hr_dir, lr_dir


def test_paired_crops_keep_lr_and_hr_aligned_through_flips_and_rotations(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, [(50, 70), (64, 66)])  # 50x70 and 64x66: modcrop cuts HR
    ds = sr_data.PairedCrops(sr_data.paired_files(hr_dir, lr_dir, 4), hr_size=24, scale=4, length=4, seed=2)
    orientations = set()
    for epoch in range(10):
        lr, hr = ds[(epoch % 2, epoch)]
        assert lr.shape == (3, 6, 6) and hr.shape == (3, 24, 24) and float(hr.min()) >= -1
        hr_uint8 = ((hr + 1) * 127.5).round().permute(1, 2, 0).byte().numpy()
        # the given LR crop is the HR crop's own bicubic LR (up to the bicubic's edge pixels): same place, same
        # orientation; compare the interior, where PIL's border handling cannot differ
        made = sr_data.to_unit_tensor(sr_data.bicubic_downsample(hr_uint8, 4))
        assert (lr[:, 1:-1, 1:-1] - made[:, 1:-1, 1:-1]).abs().max() < 0.03, f"epoch {epoch}: LR and HR disagree"
        orientations.add(hr_uint8.tobytes())
    assert len(orientations) > 2
    assert torch.equal(ds[(1, 3)][0], ds[(1, 3)][0]) and not torch.equal(ds[(1, 3)][1], ds[(1, 4)][1])


def test_paired_files_refuse_missing_and_mismatched_partners(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, [(32, 32), (40, 40)], suffix="")  # same-stem naming also pairs
    assert [lr.name for lr, _ in sr_data.paired_files(hr_dir, lr_dir, 4)] == ["0000.png", "0001.png"]
    Image.new("RGB", (9, 10)).save(lr_dir / "0001.png")  # 9x10 is not 1/4 of 40x40
    with pytest.raises(DataError, match="is not 1/4 of"):
        sr_data.PairedCrops(sr_data.paired_files(hr_dir, lr_dir, 4), hr_size=16, scale=4)[(1, 0)]
    Image.new("RGB", (32, 32)).save(hr_dir / "0002.png")
    with pytest.raises(DataError, match="no LR image for 0002.png"):
        sr_data.paired_files(hr_dir, lr_dir, 4)


# ------------------------------------------------------------------ measure, tiling, schedule (srgan/utils.py)
def y_psnr_by_hand(output, target, border):
    """PSNR of BT.601 luma (MATLAB's rgb2ycbcr scale) on [0, 1] with `border` pixels cut, in float64."""
    def luma(x):
        x = ((x.double() + 1) / 2).clamp(0, 1)
        return (16 + 65.481 * x[0] + 128.553 * x[1] + 24.966 * x[2])[border:-border, border:-border] / 255
    return float(10 * torch.log10(1 / ((luma(output) - luma(target)) ** 2).mean()))


def test_y_psnr_and_ssim_by_hand():
    torch.manual_seed(0)
    target = torch.rand(3, 20, 24) * 2 - 1
    output = (target + 0.1 * torch.randn_like(target)).clamp(-1, 1)
    assert sr_utils.psnr_y(output, target, 4) == pytest.approx(y_psnr_by_hand(output, target, 4), abs=1e-4)
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert float(sr_utils.rgb_to_y(white)) == pytest.approx(235 / 255)
    assert float(sr_utils.rgb_to_y(black)) == pytest.approx(16 / 255)
    # the border is not measured: a difference only there leaves a perfect SSIM (and an infinite PSNR)
    framed = target.clone()
    framed[:, :4], framed[:, :, -4:] = -framed[:, :4], -framed[:, :, -4:]
    assert sr_utils.ssim_y(framed, target, 4) == pytest.approx(1.0)
    assert sr_utils.ssim_y(output, target, 4) < 0.99 and sr_utils.ssim_y(framed, target, 2) < 0.99
    report = sr_utils.y_report([output, framed], [target, target], 4)
    assert report["ssim_y"] == pytest.approx((sr_utils.ssim_y(output, target, 4) + 1) / 2)
    up = sr_utils.bicubic_upsample(torch.full((1, 3, 5, 6), 0.3), 4)  # bicubic keeps a constant image
    assert up.shape == (1, 3, 20, 24) and torch.allclose(up, torch.full_like(up, 0.3), atol=1e-6)


def test_tiled_upscaling_equals_the_untiled_one():
    """A small x2 super-resolution net (three 3x3 convolutions: it sees 3 pixels around each
    input pixel, then a sub-pixel step): with an overlap of 4 the tiles leave no seam anywhere."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 12, 3, padding=1), torch.nn.PixelShuffle(2))
    image = torch.rand(3, 37, 53)
    whole = sr_utils.upscale(net, image, "cpu")
    tiled = sr_utils.upscale_tiled(net, image, "cpu", tile=16, overlap=4, scale=2)
    assert tiled.shape == whole.shape == (3, 74, 106)
    assert torch.allclose(tiled, whole, atol=1e-5)
    too_little = sr_utils.upscale_tiled(net, image, "cpu", tile=16, overlap=1, scale=2)
    assert not torch.allclose(too_little, whole, atol=1e-3)  # the check can fail: a 1-pixel overlap shows seams
    with pytest.raises(UserError, match="larger than twice"):
        sr_utils.upscale_tiled(net, image, "cpu", tile=8, overlap=4, scale=2)


def test_lr_schedule_is_the_papers_rule_at_every_step_and_across_a_resume():
    """The gan stage's 1e-4 for the first half, 1e-5 for the second (Sec. 3.2), as train.py builds
    it and TrainLoop brings it to each step: the rate of (1-based) step s is exactly
    lr * 0.1 ** (number of milestones m with s > m), before and after a resume at any step."""
    iters, lr = 10, 1e-4
    milestones = [iters // 2]

    def schedule():
        opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr)
        return opt, MultiStepLR(opt, milestones, gamma=sr_train.LR_DROP)

    for resume_every_step in (False, True):
        opt, sched = schedule()
        for step in range(1, iters + 1):
            advance_schedules([sched], step - 1)  # what TrainLoop does before the step
            assert opt.param_groups[0]["lr"] == lr * 0.1 ** sum(step > m for m in milestones), (step, resume_every_step)
            opt.step()  # the step (no gradients here: nothing moves)
            if resume_every_step:  # a run stopped here and resumed from its checkpoint's states
                saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
                opt, sched = schedule()
                opt.load_state_dict(saved_opt), sched.load_state_dict(saved_sched)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)  # the check can fail: the rate did drop
