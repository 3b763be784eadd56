"""Train and score one method on GSM8K (Deng et al.'s implicit-CoT files or the original).

`accelerate launch recipes/gsm8k.py` runs recipes/gsm8k/demo.yaml (offline, CPU, minutes);
`--config recipes/gsm8k/<name>.yaml` picks another setting and any flag overrides it. `--help` lists all.
"""

from pathlib import Path

from hf_seqvcr.scripts.train import main

if __name__ == "__main__":
    main(default_config=Path(__file__).parent / "gsm8k" / "demo.yaml")
