"""The training pipeline above the library and the data builders (TRL keeps its scripts in `trl/scripts/` the same way).

`train` runs a recipe (data → model + pauses → train → score → save/push; `seqvcr-train`), `diagnose` compares
checkpoints by entropy per layer, `probe` measures over-squashing, `plotting` and `output_dir` serve those two CLIs,
`parser` reads YAML + flags, `models` holds the from-scratch presets, `--looped` and model loading. These modules
may import `data_builders`; nothing in the library (`hf_seqvcr.*` outside this package) or in `data_builders`
imports them.
"""
