"""Train and score one method on GSM8K.

`accelerate launch recipes/gsm8k.py` runs recipes/gsm8k/demo.yaml (offline, CPU, minutes);
`--config recipes/gsm8k/<name>.yaml` picks another setting and any flag overrides it. `--help` lists all.
"""

from hf_seqvcr.scripts.train import recipe_main

if __name__ == "__main__":
    recipe_main(__file__)
