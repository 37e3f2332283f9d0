"""Makes the PyTorch fixture that proves this project computes the same function as PyTorch.

Run by hand from the repository root (needs torch, numpy and safetensors), not in CI:

    python scripts/make_fixture.py

It writes, into crates/infer/tests/fixtures/:
  tutorial.pt           the tutorial's model with seeded weights, torch.save(model.state_dict())
  tutorial.safetensors  the same state_dict as safetensors
  broken.pt             the same with 7.bias left out and an unexpected tensor added
  expected.safetensors  `images` (the first 32 MNIST test images, uint8 [32, 28, 28]) and
                        `logits`, PyTorch's float32 [32, 10] output for them, fed ToTensor()
                        inputs as in the tutorial
The Rust test (crates/infer/tests/it/pytorch_weights.rs) loads both weight files and must match
these logits within 1e-5.
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from pytorch_tutorial import load, tutorial_model  # noqa: E402

OUT = Path("crates/infer/tests/fixtures")
IMAGES = 32


def main():
    torch.manual_seed(2024)
    model = tutorial_model().eval()
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    OUT.mkdir(parents=True, exist_ok=True)
    torch.save(state, OUT / "tutorial.pt")
    save_file(state, OUT / "tutorial.safetensors")

    broken = dict(state)
    del broken["7.bias"]
    broken["8.weight"] = torch.zeros(3)
    torch.save(broken, OUT / "broken.pt")

    images, _ = load("data/mnist", "test")
    images = torch.from_numpy(images[:IMAGES].copy())
    with torch.no_grad():
        # ToTensor(): uint8 → float32 in [0, 1], one channel.
        logits = model(images.float().div(255).unsqueeze(1))
    save_file({"images": images, "logits": logits.contiguous()}, OUT / "expected.safetensors")
    for path in sorted(OUT.iterdir()):
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
