"""`make demo`: `hacnn-tf demo` (see `hacnn-tf demo --help`)."""

from hacnn_tf.cli import subcommand_main

if __name__ == "__main__":
    raise SystemExit(subcommand_main("demo"))
