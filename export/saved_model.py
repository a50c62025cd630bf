"""Export a checkpoint to a versioned SavedModel for TF Serving (self-checked in a fresh process).

Example: python -m export.saved_model runs/market/best.keras exported --version 1 --warmup-images runs/demo/data/query
"""

from __future__ import annotations

import argparse
import pathlib

from hacnn_tf.convert.checkpoint import load_checkpoint
from hacnn_tf.export.saved_model import export_saved_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help=".keras file, or a torchreid .pth/.pth.tar/.pt")
    parser.add_argument("export_dir", help="model base path: writes <export_dir>/<model_name>/<version>/")
    parser.add_argument("--model-name", default="hacnn")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--align-corners", action="store_true", help="torchreid checkpoint trained with PyTorch<=1.2")
    parser.add_argument("--warmup-images", help="folder of JPEG/PNG images for TF Serving warm-up requests")
    args = parser.parse_args(argv)
    warmup = None
    if args.warmup_images:
        files = sorted(p for p in pathlib.Path(args.warmup_images).iterdir() if p.suffix.lower() in
                       (".jpg", ".jpeg", ".png"))[:8]
        if not files:
            raise SystemExit(f"--warmup-images: no .jpg/.png files in {args.warmup_images}")
        warmup = [p.read_bytes() for p in files]
    model = load_checkpoint(args.checkpoint, args.align_corners)
    path = export_saved_model(model, args.export_dir, args.model_name, args.version, warmup_images=warmup)
    print(f"wrote {path} (self-check passed: fresh-process reload equals the Keras model to <= 1e-5)")


if __name__ == "__main__":
    main()
