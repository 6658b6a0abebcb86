#!/usr/bin/env bash
# Validates the manifests offline against Kubernetes' own schemas (no cluster needed):
# the templates are rendered with example values first, as `envsubst` would at creation.
# Needs envsubst (gettext-base) and the kubernetes-validate Python package.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in *.yaml; do
  TARGET=echo.example.internal:7000 CONNS=150000 SHARDS=3 START_AT=1900000000 \
    envsubst '${TARGET} ${CONNS} ${SHARDS} ${START_AT}' < "$f" > "$out/$f"
done
kubernetes-validate --strict "$out"/*.yaml
