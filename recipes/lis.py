"""Train and score one method on longest increasing subsequence (Feng et al.).

`accelerate launch recipes/lis.py` runs recipes/lis/demo.yaml (offline, CPU, minutes);
`--config recipes/lis/<name>.yaml` picks another setting and any flag overrides it. `--help` lists all.
"""

from hf_seqvcr.scripts.train import recipe_main

if __name__ == "__main__":
    recipe_main(__file__)
