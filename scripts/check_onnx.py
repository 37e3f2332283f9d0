"""Checks an exported ONNX model against this project's own outputs: ONNX's full checker, then
onnxruntime on every image at batch sizes 256 and 1, compared with the logits and digits
`infer` computed for the same images.

    python scripts/check_onnx.py model.onnx images.f32 logits.f32

`images.f32` holds N × 784 float32 pixels / 255 and `logits.f32` N × 10 float32 logits, both
little-endian, as the `infer` crate's ONNX test writes them. Needs numpy, onnx, onnxruntime.
Prints one line of figures; exits non-zero when any image's digit differs or a logit is
more than 1e-4 away.
"""

import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model_path, images_path, logits_path = sys.argv[1:4]
    onnx.checker.check_model(onnx.load(model_path), full_check=True)
    images = np.fromfile(images_path, dtype="<f4").reshape(-1, 1, 28, 28)
    expected = np.fromfile(logits_path, dtype="<f4").reshape(-1, 10)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    for batch in (256, 1):
        got = np.concatenate(
            [
                session.run(["logits"], {name: images[i : i + batch]})[0]
                for i in range(0, len(images), batch)
            ]
        )
        gap = float(np.abs(got - expected).max())
        differ = int((got.argmax(1) != expected.argmax(1)).sum())
        print(f"batch {batch}: {len(images)} images, {differ} digits differ, largest logit gap {gap:.2e}")
        if differ or gap > 1e-4:
            sys.exit(1)


if __name__ == "__main__":
    main()
