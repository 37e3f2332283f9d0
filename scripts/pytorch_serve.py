"""The PyTorch counterpart of `serve`, for `cargo xtask bench --serve --pytorch PYTHON`.

What a PyTorch user would write to put the tutorial's model behind HTTP: FastAPI on uvicorn
(one worker), the tutorial's `nn.Sequential` loaded with `load_state_dict` from the file
`cargo xtask export` writes, and per request the same work as `serve`'s API: decode the
posted image with Pillow, make it grey, invert a light background, resize it to 28×28, run
one forward pass, and answer the digit, its confidence, the ten probabilities and the 28×28
image as a base64 PNG. The preprocessing is the usual naive one, not MNIST's recipe (no crop
to the ink, no 20 px box, no centring by mass), so photos and scans fare worse than in
`serve`; the bench reports how many sample digits each server gets right.

    python scripts/pytorch_serve.py model.safetensors [--addr 127.0.0.1:0]

Prints `serving the tutorial's model on http://ADDR/` first, as `serve` does, and stops
cleanly on SIGTERM. Needs torch, safetensors, fastapi, uvicorn, Pillow and numpy.
"""

import argparse
import base64
import io
import signal
import socket
import sys
from pathlib import Path

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from PIL import Image
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from pytorch_tutorial import tutorial_model  # noqa: E402


def preprocess(body):
    """Image bytes → the 28×28 grey image, light ink on black, as uint8."""
    grey = Image.open(io.BytesIO(body)).convert("L")
    pixels = np.asarray(grey.resize((28, 28), Image.BILINEAR), dtype=np.uint8)
    if pixels.mean() > 127:
        pixels = 255 - pixels
    return pixels


def build_app(weights):
    model = tutorial_model().eval()
    model.load_state_dict(load_file(weights))
    app = FastAPI()

    @app.get("/api/health")
    async def health():
        return {"status": "ok"}

    @app.post("/api/classify")
    async def classify(request: Request):
        body = await request.body()
        if not body:
            raise HTTPException(400, "empty body")
        try:
            pixels = preprocess(body)
        except Exception as error:  # Pillow raises many kinds for undecodable input.
            raise HTTPException(400, f"not a readable image: {error}") from error
        with torch.no_grad():
            inputs = torch.from_numpy(pixels.astype(np.float32) / 255)[None, None]
            probabilities = torch.softmax(model(inputs), dim=1)[0]
        digit = int(probabilities.argmax())
        png = io.BytesIO()
        Image.fromarray(pixels).save(png, format="PNG")
        return {
            "digit": digit,
            "confidence": float(probabilities[digit]),
            "probabilities": probabilities.tolist(),
            "preprocessed": base64.b64encode(png.getvalue()).decode(),
        }

    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="the safetensors file `cargo xtask export` wrote")
    parser.add_argument("--addr", default="127.0.0.1:0", help="HOST:PORT (port 0: any free)")
    args = parser.parse_args()
    host, port = args.addr.rsplit(":", 1)
    app = build_app(args.weights)
    # Listen first, so the address printed is the one listening, even with port 0, and
    # connections made before uvicorn has started wait in the backlog.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # As `serve` does: otherwise each answer's body waits for the client's delayed ACK of
    # its headers, ~50 ms per request on a keep-alive connection. Accepted sockets inherit it.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, int(port)))
    listener.listen(2048)
    bound_host, bound_port = listener.getsockname()
    print(f"serving the tutorial's model on http://{bound_host}:{bound_port}/", flush=True)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler
    # that was there before it: this one makes that a normal exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = uvicorn.Config(app, workers=1, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
