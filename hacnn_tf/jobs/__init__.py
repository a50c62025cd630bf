"""Jobs: whole runs built from the library (the demo, the figure set of a trained model, a checkpoint's
evaluation), which the `hacnn-tf` subcommands start."""
