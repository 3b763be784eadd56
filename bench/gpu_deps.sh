#!/usr/bin/env bash
# Pack the pure-Python packages the project needs beyond the device image (transformers >= 5.23, huggingface_hub 2,
# datasets and its dill/multiprocess, peft) from this machine's venv into outputs/gpu_deps.tar.gz (~16 MB, under the
# device tool's 64 MiB), for `carry: ["outputs/gpu_deps.tar.gz"]`; bench/gpu_check.sh unpacks it. Pure Python, so the
# device's Python 3.12 can import what this 3.11 venv holds. No network needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-/work/main/.venv/bin/python}"
SITE=$($PY -c "import transformers, os; print(os.path.dirname(os.path.dirname(transformers.__file__)))")
cd "$SITE"
ITEMS=()
for name in transformers huggingface_hub datasets dill multiprocess _multiprocess peft; do
    [ -e "$name" ] && ITEMS+=("$name")
    for info in "${name}"-*.dist-info; do [ -e "$info" ] && ITEMS+=("$info"); done
done
tar --exclude='__pycache__' -czf "$OLDPWD/outputs/gpu_deps.tar.gz" "${ITEMS[@]}"
ls -la "$OLDPWD/outputs/gpu_deps.tar.gz"
