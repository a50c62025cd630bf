"""Embed image files through a running TF Serving (REST or gRPC) and print or save the embeddings.

Example: python -m export.client a.jpg b.jpg --rest http://localhost:8501 --save embeddings.npy
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

from hacnn_tf.serving.client import embed_grpc, embed_rest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", help="JPEG/PNG files")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--rest", default="http://localhost:8501", help="REST base URL (default)")
    transport.add_argument("--grpc", help="gRPC target host:port, e.g. localhost:8500")
    parser.add_argument("--model-name", default="hacnn")
    parser.add_argument("--save", help="write the (N, D) embeddings to this .npy file")
    args = parser.parse_args(argv)
    images = [pathlib.Path(p).read_bytes() for p in args.images]
    if args.grpc:
        embeddings = embed_grpc(images, args.grpc, args.model_name)
    else:
        embeddings = embed_rest(images, args.rest, args.model_name)
    if args.save:
        np.save(args.save, embeddings)
    for path, embedding in zip(args.images, embeddings):
        print(f"{path}: {embedding.shape[0]}-d, |e| = {np.linalg.norm(embedding):.4f}, first {embedding[:4]}")


if __name__ == "__main__":
    main()
