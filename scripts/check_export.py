"""Full-size check of an exported model: PyTorch evaluates it on the 10,000 MNIST test images
and compares its predictions with this project's.

    cargo xtask export --model artifacts/default --to model.safetensors
    cargo xtask eval --model artifacts/default --predictions predictions.csv
    python scripts/check_export.py model.safetensors predictions.csv

Needs torch, numpy and safetensors. The model is the tutorial's `nn.Sequential`, loaded with
`load_state_dict` unchanged and fed `ToTensor()` inputs (pixels / 255) as in the tutorial.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from pytorch_tutorial import load, tutorial_model  # noqa: E402


def main():
    weights, predictions = sys.argv[1], sys.argv[2]
    model = tutorial_model().eval()
    model.load_state_dict(load_file(weights))
    images, labels = load("data/mnist", "test")
    with torch.no_grad():
        inputs = torch.from_numpy(images.copy()).float().div(255).unsqueeze(1)
        theirs = model(inputs).argmax(1).numpy()
    rows = np.loadtxt(predictions, delimiter=",", skiprows=1, dtype=np.int64)
    ours = rows[:, 2]
    assert (rows[:, 1] == labels).all(), "the predictions file is not in test-set order"
    same = (ours == theirs).mean() * 100
    acc_ours = (ours == labels).mean() * 100
    acc_theirs = (theirs == labels).mean() * 100
    print(f"same prediction on {same:.2f}% of {len(labels)} test images")
    print(f"accuracy: this project {acc_ours:.2f}%, PyTorch {acc_theirs:.2f}%")


if __name__ == "__main__":
    main()
