"""Checks `serve`'s Open Inference Protocol (v2) endpoints with the official client,
`tritonclient[http]`, as KServe and Triton users would call them.

Usage: python check_oip.py HOST:PORT CASES.json, where CASES.json lists, for each sample image,
its file, the 28x28 pixels `/api/classify` saw, the probabilities it answered and its verdict.
Each image is sent twice, as MNIST-style FP32 pixels in [0, 1] and as the encoded file (BYTES),
and both answers must match `/api/classify`'s within 1e-5; the file's answer, asked for every
output, must carry the same verdict. Run by the serve crate's tests.
"""

import json
import sys

import numpy as np
import tritonclient.http as http

address, cases_path = sys.argv[1], sys.argv[2]
with open(cases_path) as f:
    cases = json.load(f)

client = http.InferenceServerClient(url=address)
assert client.is_server_live(), "not live"
assert client.is_server_ready(), "not ready"
assert client.is_model_ready("mnist"), "model not ready"
metadata = client.get_model_metadata("mnist")
assert metadata["inputs"][0]["name"] == "input", metadata
output = http.InferRequestedOutput("probabilities", binary_data=True)

for case in cases:
    expected = np.array(case["probabilities"], dtype=np.float32)
    pixels = np.array(case["pixels"], dtype=np.float32).reshape(1, 1, 28, 28) / 255.0
    tensor = http.InferInput("input", [1, 1, 28, 28], "FP32")
    tensor.set_data_from_numpy(pixels, binary_data=True)
    got = client.infer("mnist", [tensor], outputs=[output]).as_numpy("probabilities")[0]
    assert np.allclose(got, expected, atol=1e-5), (case["file"], got, expected)

    with open(case["file"], "rb") as f:
        encoded = np.array([f.read()], dtype=np.object_)
    tensor = http.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(encoded, binary_data=True)
    result = client.infer("mnist", [tensor])
    got = result.as_numpy("probabilities")[0]
    assert np.allclose(got, expected, atol=1e-5), (case["file"], got, expected)
    assert int(np.argmax(got)) == int(np.argmax(expected))
    verdict = result.as_numpy("verdict")[0]
    verdict = verdict.decode() if isinstance(verdict, bytes) else verdict
    assert verdict == case["verdict"], (case["file"], verdict, case["verdict"])

print(f"{len(cases)} images, as pixels and as files: tritonclient's answers and verdicts agree with /api/classify")
