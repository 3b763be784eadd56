"""Train and score one method on k×k multiplication in Deng et al.'s format.

`accelerate launch recipes/multiplication.py` runs recipes/multiplication/demo.yaml (offline, CPU, minutes);
`--config recipes/multiplication/<name>.yaml` picks another setting and any flag overrides it. `--help` lists all.
"""

from pathlib import Path

from hf_seqvcr.scripts.train import main

if __name__ == "__main__":
    main(default_config=Path(__file__).parent / "multiplication" / "demo.yaml")
