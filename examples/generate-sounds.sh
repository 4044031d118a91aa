#!/usr/bin/env bash
# Regenerates the examples' own prompts from each example's prompts.txt (`name|text` lines).
#
# An example's prompts live in examples/NAME/sounds/en/NAME/*.wav: copying examples/NAME/sounds/
# over the switch's sounds/ directory (`cp -r examples/NAME/sounds/. sounds/`) puts them at
# sounds/en/NAME/, where a script plays them as `play NAME/prompt`. Same tools and sox pipeline
# as sounds/generate.sh (8 kHz mono s16, trimmed, -3 dBFS, deterministic); needs espeak-ng and sox.
#   bash examples/generate-sounds.sh              # every example
#   bash examples/generate-sounds.sh two-shops    # one
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

speak() {
    local out="$1" text="$2"
    mkdir -p "$(dirname "$out")"
    espeak-ng -v en-us -s 150 -w "$TMP/raw.wav" "$text"
    sox -D -R "$TMP/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.02 0.3 gain -3 rate 8000 norm -3
}

if [[ $# -gt 0 ]]; then names=("$@"); else
    names=()
    for list in "$HERE"/*/prompts.txt; do names+=("$(basename "$(dirname "$list")")"); done
fi
for name in "${names[@]}"; do
    dir="$HERE/$name/sounds/en/$name"
    rm -f "$dir"/*.wav
    while IFS='|' read -r file text; do
        [[ -z "$file" || "$file" == \#* ]] && continue
        speak "$dir/$file.wav" "$text"
    done < "$HERE/$name/prompts.txt"
done
