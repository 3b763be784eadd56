"""Train and score one method on arithmetic expressions modulo a prime (Feng et al.).

`accelerate launch recipes/arithmetic.py` runs recipes/arithmetic/demo.yaml (offline, CPU, minutes);
`--config recipes/arithmetic/<name>.yaml` picks another setting and any flag overrides it. `--help` lists all.
"""

from hf_seqvcr.scripts.train import recipe_main

if __name__ == "__main__":
    recipe_main(__file__)
