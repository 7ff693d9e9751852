#!/usr/bin/env bash
# Regenerates completions/ and man/ from the clap definitions. A test fails when the
# committed files differ from what the code generates, so run this after changing the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked
bin="${CARGO_TARGET_DIR:-target}/debug/dispatchctl"
mkdir -p completions man
rm -f completions/* man/*
for shell in bash zsh fish powershell elvish; do
  case "$shell" in
    bash) file=dispatchctl.bash ;;
    zsh) file=_dispatchctl ;;
    fish) file=dispatchctl.fish ;;
    powershell) file=_dispatchctl.ps1 ;;
    elvish) file=dispatchctl.elv ;;
  esac
  "$bin" completions "$shell" > "completions/$file"
done
"$bin" man man
echo "wrote $(ls completions | wc -l) completion scripts and $(ls man | wc -l) man pages"
