#!/usr/bin/env bash
# Regenerates the Python code and mypy stubs of the contracts in protos/, beside the .proto
# files (protos/catalog/v1/*_pb2.py, *_pb2_grpc.py, *_pb2.pyi, *_pb2_grpc.pyi).
#
#   scripts/gen_protos.sh           regenerate in place
#   scripts/gen_protos.sh --check   generate into a temporary folder and fail when the
#                                   committed files differ ("run make protos")
#
# Uses the protoc embedded in the venv's grpcio-tools and the venv's mypy-protobuf plugins, so
# the output depends only on the pinned versions of those packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
BIN="$(dirname "$PYTHON")"
PROTO_ROOT="protos"
PKG_DIR="catalog/v1"

mode="write"
case "${1:-}" in
  "") ;;
  --check) mode="check" ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

for tool in "$PYTHON" "$BIN/protoc-gen-mypy" "$BIN/protoc-gen-mypy_grpc"; do
  if [[ ! -x "$tool" ]]; then
    echo "gen_protos: $tool is missing; run make venv" >&2
    exit 1
  fi
done

# Sorted, relative to the module root, so the output does not depend on the file system order.
mapfile -t protos < <(cd "$PROTO_ROOT" && find "$PKG_DIR" -name '*.proto' | LC_ALL=C sort)
if [[ ${#protos[@]} -eq 0 ]]; then
  echo "gen_protos: no .proto files under $PROTO_ROOT/$PKG_DIR" >&2
  exit 1
fi

generate() {  # generate OUT_DIR: writes catalog/v1/*_pb2*.py{,i} under OUT_DIR
  local out="$1"
  mkdir -p "$out"
  "$PYTHON" -m grpc_tools.protoc \
    -I"$PROTO_ROOT" \
    --plugin=protoc-gen-mypy="$BIN/protoc-gen-mypy" \
    --plugin=protoc-gen-mypy_grpc="$BIN/protoc-gen-mypy_grpc" \
    --python_out="$out" \
    --grpc_python_out="$out" \
    --mypy_out=quiet:"$out" \
    --mypy_grpc_out=quiet:"$out" \
    "${protos[@]/#/$PROTO_ROOT/}"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
generate "$tmp"
# Package markers: protos/catalog and protos/catalog/v1 are regular (empty) packages.
: >"$tmp/catalog/__init__.py"
: >"$tmp/$PKG_DIR/__init__.py"

# The generated files, relative to protos/.
mapfile -t generated < <(cd "$tmp" && find catalog -type f | LC_ALL=C sort)

if [[ "$mode" == "check" ]]; then
  status=0
  for f in "${generated[@]}"; do
    if [[ ! -f "$PROTO_ROOT/$f" ]]; then
      echo "gen_protos: $PROTO_ROOT/$f is missing" >&2
      status=1
    elif ! diff -u "$PROTO_ROOT/$f" "$tmp/$f" >&2; then
      echo "gen_protos: $PROTO_ROOT/$f is out of date" >&2
      status=1
    fi
  done
  # Generated files whose .proto is gone.
  while IFS= read -r f; do
    if [[ ! -f "$tmp/$f" ]]; then
      echo "gen_protos: $PROTO_ROOT/$f has no .proto any more" >&2
      status=1
    fi
  done < <(cd "$PROTO_ROOT" && find "$PKG_DIR" -type f \( -name '*_pb2.py' -o -name '*_pb2_grpc.py' \
             -o -name '*_pb2.pyi' -o -name '*_pb2_grpc.pyi' \) | LC_ALL=C sort)
  if [[ $status -ne 0 ]]; then
    echo "gen_protos: the generated code differs from protos/*.proto: run make protos" >&2
    exit 1
  fi
  echo "gen_protos: generated code is up to date (${#generated[@]} files)"
  exit 0
fi

# Write mode: replace the old generated files (removing those of deleted .proto files).
find "$PROTO_ROOT/$PKG_DIR" -type f \( -name '*_pb2.py' -o -name '*_pb2_grpc.py' \
  -o -name '*_pb2.pyi' -o -name '*_pb2_grpc.pyi' \) -delete
for f in "${generated[@]}"; do
  mkdir -p "$(dirname "$PROTO_ROOT/$f")"
  cp "$tmp/$f" "$PROTO_ROOT/$f"
done
echo "gen_protos: wrote ${#generated[@]} files under $PROTO_ROOT/$PKG_DIR"
