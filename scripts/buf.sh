#!/usr/bin/env bash
# buf for the contracts in protos/ (module root protos/, config protos/buf.yaml).
#
#   scripts/buf.sh lint       buf lint (STANDARD + COMMENTS)
#   scripts/buf.sh breaking   buf breaking (FILE) against git: against HEAD when the working
#                             tree changed protos/ since HEAD, else against HEAD~1. Passes
#                             with a message when that commit has no protos yet.
#
# buf comes from npm (the @bufbuild/buf package ships the binary); set BUF to use another one.
set -euo pipefail

BUF_VERSION="1.75.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ -n "${BUF:-}" ]]; then
  read -r -a buf <<<"$BUF"
elif command -v buf >/dev/null 2>&1 && [[ "$(buf --version 2>/dev/null)" == "$BUF_VERSION" ]]; then
  buf=(buf)
else
  buf=(npx --yes --loglevel=error "@bufbuild/buf@$BUF_VERSION")
fi

# Does commit $1 hold protos/buf.yaml and at least one .proto under protos/?
has_protos() {
  git cat-file -e "$1:protos/buf.yaml" 2>/dev/null &&
    [[ -n "$(git ls-tree -r --name-only "$1" -- protos | grep '\.proto$' || true)" ]]
}

case "${1:-}" in
  lint)
    "${buf[@]}" lint protos
    echo "buf lint: clean"
    ;;
  breaking)
    if ! git rev-parse --verify --quiet HEAD >/dev/null; then
      echo "buf breaking: no commit yet; nothing to compare against"
      exit 0
    fi
    # Changes to protos/ since HEAD, staged or not, tracked or new.
    if [[ -n "$(git status --porcelain --untracked-files=all -- protos)" ]]; then
      ref="HEAD"
    elif git rev-parse --verify --quiet HEAD~1 >/dev/null; then
      ref="HEAD~1"
    else
      echo "buf breaking: HEAD is the first commit and protos/ is unchanged; nothing to compare against"
      exit 0
    fi
    if ! has_protos "$ref"; then
      echo "buf breaking: $ref ($(git rev-parse --short "$ref")) has no protos yet; nothing to compare against"
      exit 0
    fi
    echo "buf breaking: protos/ against $ref ($(git rev-parse --short "$ref"))"
    "${buf[@]}" breaking protos --against ".git#ref=$(git rev-parse "$ref"),subdir=protos"
    echo "buf breaking: no breaking change"
    ;;
  *)
    echo "usage: $0 lint|breaking" >&2
    exit 2
    ;;
esac
