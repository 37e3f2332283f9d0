"""The PyTorch tutorial this project started from, as a benchmark and reference.

Trains the tutorial's network with its recipe (Adam 1e-3, batch 128, seed 3, `ToTensor()`
inputs) on the MNIST files in `data/mnist`, and prints one JSON object per epoch and a final
one, so `cargo xtask bench --pytorch PYTHON` can read the timings.

Two ways to feed the network:
  --loader tutorial   the tutorial's own: a per-image Dataset (PIL image + ToTensor, as
                      torchvision's MNIST does) behind `DataLoader(shuffle=True)`;
  --loader preloaded  the whole set as one tensor, sliced into shuffled batches: PyTorch's
                      compute alone, without its per-image data path.

Needs torch and numpy (torchvision and Pillow only for --loader tutorial); reads the gzipped
IDX files directly, so nothing is downloaded.
"""

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(Path(data_dir) / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(Path(data_dir) / f"{prefix}-labels-idx1-ubyte.gz")
    return images, labels


def tutorial_model():
    """The tutorial's `nn.Sequential`, without its final Softmax (cross-entropy takes logits)."""
    return nn.Sequential(
        nn.Conv2d(1, 10, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(10, 20, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(500, 10),
    )


class ImageDataset(torch.utils.data.Dataset):
    """One PIL image through `ToTensor()` per item, as torchvision's `datasets.MNIST` does."""

    def __init__(self, images, labels):
        from PIL import Image
        from torchvision.transforms import ToTensor

        self.images, self.labels = images, labels
        self.to_image, self.to_tensor = Image.fromarray, ToTensor()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = self.to_image(self.images[i], mode="L")
        return self.to_tensor(image), int(self.labels[i])


def preloaded_batches(images, labels, batch_size, shuffle, generator=None):
    order = torch.randperm(len(labels), generator=generator) if shuffle else None
    for start in range(0, len(labels), batch_size):
        if order is None:
            yield images[start : start + batch_size], labels[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield images[index], labels[index]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--loader", choices=["tutorial", "preloaded"], default="tutorial")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    train_images, train_labels = load(args.data, "train")
    test_images, test_labels = load(args.data, "test")
    model = tutorial_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    if args.loader == "tutorial":
        train_loader = torch.utils.data.DataLoader(
            ImageDataset(train_images, train_labels), batch_size=args.batch_size, shuffle=True
        )
        test_loader = torch.utils.data.DataLoader(
            ImageDataset(test_images, test_labels), batch_size=args.batch_size
        )
        train_batches = lambda: train_loader
        test_batches = lambda: test_loader
    else:
        as_input = lambda images: torch.from_numpy(images.copy()).float().div_(255).unsqueeze(1)
        as_target = lambda labels: torch.from_numpy(labels.astype(np.int64))
        xs, ys = as_input(train_images), as_target(train_labels)
        tx, ty = as_input(test_images), as_target(test_labels)
        generator = torch.Generator().manual_seed(args.seed)
        train_batches = lambda: preloaded_batches(xs, ys, args.batch_size, True, generator)
        test_batches = lambda: preloaded_batches(tx, ty, args.batch_size, False)

    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        for images, targets in train_batches():
            optimizer.zero_grad()
            loss = loss_fn(model(images), targets)
            loss.backward()
            optimizer.step()
        t1 = time.perf_counter()
        model.eval()
        correct, total, loss_sum = 0, 0, 0.0
        with torch.no_grad():
            for images, targets in test_batches():
                logits = model(images)
                loss_sum += loss_fn(logits, targets).item() * len(targets)
                correct += (logits.argmax(1) == targets).sum().item()
                total += len(targets)
        t2 = time.perf_counter()
        print(
            json.dumps(
                {
                    "epoch": epoch,
                    "train_seconds": t1 - t0,
                    "test_seconds": t2 - t1,
                    "train_images": len(train_labels),
                    "test_images": total,
                    "test_accuracy": 100.0 * correct / total,
                    "test_loss": loss_sum / total,
                }
            ),
            flush=True,
        )
    print(json.dumps({"total_seconds": time.perf_counter() - started, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
