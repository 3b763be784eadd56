"""Train and score one model on p-hop induction (Saunshi et al., 2025), looped or not.

`accelerate launch recipes/phop.py` runs recipes/phop/demo.yaml, a (1⊗4) looped model (offline, CPU, minutes);
`--config recipes/phop/<name>.yaml` picks another setting and any flag overrides it. `--help` lists all.
"""

from hf_seqvcr.scripts.train import recipe_main

if __name__ == "__main__":
    recipe_main(__file__)
