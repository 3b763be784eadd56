"""Train and score one method on k×k multiplication in Deng et al.'s format.

`accelerate launch recipes/multiplication.py` runs recipes/multiplication/demo.yaml (offline, CPU, minutes);
`--config recipes/multiplication/<name>.yaml` picks another setting and any flag overrides it. `--help` lists all.
"""

from hf_seqvcr.scripts.train import recipe_main

if __name__ == "__main__":
    recipe_main(__file__)
