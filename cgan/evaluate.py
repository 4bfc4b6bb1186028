"""Measure a trained conditional GAN: FID, KID, the Inception-Score analogue, SWD, MS-SSIM
diversity, and class accuracy (does G(z | y) show the digit y?).

    python evaluate.py --checkpoint runs/cgan-digits/checkpoints/last.pt
    python evaluate.py --checkpoint ... --n 10000 --features inception      # standard Inception
    python evaluate.py --checkpoint ... --real                              # + real-vs-real line

`--n` images are generated for the labels 0, 1, ..., 9, 0, 1, ... (a balanced set) and
compared with `--n` real ones (half B of a fixed split of the training data,
common/metrics.py); `--real` adds half A against B, the value a perfect model would get
at this n. Class accuracy is the fraction of the generated images that the project's
offline digit classifier (common/features.py) assigns to the requested label; on real
digits it is the classifier's own accuracy, printed with `--real`. It is reported for
digit data only (digits, mnist): the classifier knows no other classes. The results are
printed and appended as JSON lines to <run>/metrics.jsonl (or --jsonl), each naming its
features; class accuracy is the key "class_accuracy".
"""
import sys
from pathlib import Path

if not __package__:  # run as a script inside its folder: import the folder as a package, whatever its name (PEP 366)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = Path(__file__).parent.name

import torch

from common import inference, metrics
from common.checkpoint import load_for_inference
from common.device import pick_device
from common.errors import run_main
from .dataset import build_dataset
from .model import build_generator
from .utils import class_accuracy, cycling_labels, generate, label_classifier, sample_z

MODEL_NAME = "cgan"


def parse_opt(argv=None):
    parser = inference.evaluate_parser(MODEL_NAME, "Evaluate a trained conditional GAN against its training data.")
    return parser.parse_args(argv)


def real_labels(dataset, seed: int, n: int) -> torch.Tensor:
    """The labels of real half A (common.metrics.reference_split), for the reference accuracy."""
    half_a, _ = metrics.reference_split(len(dataset), n, seed)
    return torch.tensor([int(dataset[int(i)][1]) for i in half_a])


def main(opt) -> list[dict]:
    device = pick_device(opt.device)
    payload = load_for_inference(opt.checkpoint, MODEL_NAME)
    G, o = inference.load_generator(opt.checkpoint, MODEL_NAME, build_generator, device, payload=payload)
    dataset = build_dataset(inference.stored_data(o, opt.data_root))
    evaluator = inference.evaluator(opt, dataset, o, device)
    z = sample_z(evaluator.n, o["nz"], o["z_dist"], generator=torch.Generator().manual_seed(opt.seed))
    labels = cycling_labels(evaluator.n, o["num_classes"])
    images = generate(G, z, labels, device, seed=opt.seed)
    records = inference.evaluation_records(opt, payload, evaluator, images, MODEL_NAME, arch=o.get("arch", "conv"))
    classifier = label_classifier(o["data"])
    if classifier is None:
        print(f"class accuracy: not measured (the offline classifier knows digits only, the data are {o['data']})")
    else:  # does G(z | y) show the digit y? On real digits: the classifier's own accuracy
        records[0]["class_accuracy"] = class_accuracy(classifier, images, labels)
        if opt.real:
            records[1]["class_accuracy"] = class_accuracy(
                classifier, evaluator.real_a, real_labels(dataset, opt.seed, evaluator.n))
    metrics.report_records(records, opt.checkpoint, opt.jsonl)
    return records


if __name__ == "__main__":
    run_main(lambda: main(parse_opt()))
