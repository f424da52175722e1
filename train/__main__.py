"""python -m train [--model cgan] ...: the engines' training (train.train) or the cGAN baseline's (train.cgan)."""
import sys

from train import cgan, train

argv = sys.argv[1:]
if "--model" in argv:
    i = argv.index("--model")
    model = argv[i + 1] if i + 1 < len(argv) else ""
    if model not in ("engine", "cgan"):
        sys.exit(f"--model must be engine or cgan, got {model!r}")
    argv = argv[:i] + argv[i + 2:]
else:
    model = "engine"
sys.exit(cgan.main(argv) if model == "cgan" else train.main(argv))
