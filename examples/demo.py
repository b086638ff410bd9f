"""The main job: train a zoo CNN on real images, save it, reload it by name, predict.

    hatch run demo                      # digits (ships with scikit-learn) or Fashion-MNIST if present
    hatch run demo --dataset digits --epochs 20

Data: Fashion-MNIST when the Debian package ``dataset-fashion-mnist`` or a cached download
is present (``--dataset auto``, the default), otherwise scikit-learn's bundled 8x8 digits.
Nothing is downloaded. Writes ``runs/demo/model`` (config.json + model.safetensors) and
``runs/demo/loss.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import plait.zoo as zoo
from plait.core import manual_seed, no_grad
from plait.layers import CrossEntropyLoss
from plait.optim import AdamW
from plait.train import PlotHistory, ProgressBar, Trainer
from plait.train.datasets import load_digits, load_fashion_mnist


def load_images(choice: str, limit: int | None) -> tuple[str, str, tuple, tuple]:
    """(dataset name, zoo preset, (x_train, y_train), (x_test, y_test)); images as (N, 1, H, W)."""
    if choice in ("auto", "fashion-mnist"):
        try:
            (x_tr, y_tr), (x_te, y_te) = load_fashion_mnist(download=False)
        except Exception as exc:  # not installed and not cached
            if choice == "fashion-mnist":
                raise SystemExit(f"Fashion-MNIST not found: {exc}") from exc
        else:
            if limit:
                x_tr, y_tr = x_tr[:limit], y_tr[:limit]
            return "Fashion-MNIST", "lenet5", (x_tr[:, None], y_tr), (x_te[:, None], y_te)
    x, y = load_digits()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order][:, None], y[order]
    split = int(0.8 * len(x))
    return "scikit-learn digits", "cnn-digits", (x[:split], y[:split]), (x[split:], y[split:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["auto", "digits", "fashion-mnist"], default="auto")
    parser.add_argument("--epochs", type=int, default=None, help="default: 15 (digits) or 3 (Fashion-MNIST)")
    parser.add_argument("--train-size", type=int, default=60000, help="Fashion-MNIST training images used")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    args = parser.parse_args()

    manual_seed(0)
    name, preset, train, test = load_images(args.dataset, args.train_size)
    epochs = args.epochs or (3 if preset == "lenet5" else 15)
    mean, std = float(train[0].mean()), float(train[0].std())  # standardise with training statistics
    train = ((train[0] - mean) / std, train[1])
    test = ((test[0] - mean) / std, test[1])
    print(f"data: {name}: {len(train[0])} training / {len(test[0])} test images of shape {train[0].shape[1:]}")

    model = zoo.create(preset)
    print(f"model: {preset} ({model.num_parameters():,} parameters)")
    trainer = Trainer(
        model,
        CrossEntropyLoss(),
        AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4),
        metrics=["accuracy"],
        callbacks=[ProgressBar(), PlotHistory(args.out / "loss.png")],
        seed=0,
    )
    start = time.perf_counter()
    trainer.fit(train, val=test, epochs=epochs, batch_size=64)
    seconds = time.perf_counter() - start
    result = trainer.evaluate(test)
    print(f"test accuracy: {result['accuracy']:.4f}  (loss {result['loss']:.4f}, {epochs} epochs in {seconds:.1f} s)")

    folder = args.out / "model"
    zoo.save(model, folder)
    reloaded = zoo.load(folder)
    print(f"saved to {folder}/ and reloaded as {type(reloaded).__name__} from its config.json")
    with no_grad():
        same = np.array_equal(model.eval()(test[0]), reloaded.eval()(test[0]))
    print(f"reloaded model predicts the same: {same}; loss curve: {args.out / 'loss.png'}")
    if not same:
        raise SystemExit("the reloaded model's predictions differ")


if __name__ == "__main__":
    main()
