"""`make demo`: `hacnn-tf demo` (see `hacnn-tf demo --help`)."""

from hacnn_tf.cli import subcommand_main

if __name__ == "__main__":
    subcommand_main("demo")
