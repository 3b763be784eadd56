"""Train and score one method on arithmetic expressions modulo a prime (Feng et al.).

`accelerate launch recipes/arithmetic.py` runs recipes/arithmetic/demo.yaml (offline, CPU, minutes);
`--config recipes/arithmetic/<name>.yaml` picks another setting and any flag overrides it. `--help` lists all.
"""

from pathlib import Path

from hf_seqvcr.scripts.train import main

if __name__ == "__main__":
    main(default_config=Path(__file__).parent / "arithmetic" / "demo.yaml")
