#!/usr/bin/env bash
# Creates (idempotently) the Python test-oracle venv: CPU PyTorch + transformers + safetensors +
# numpy + mergekit + pytest, at ${UPCYCLE_PY_VENV:-$HOME/.cache/upcycle-py/venv}.
# Prints the venv's python on the LAST line of stdout; everything else goes to stderr:
#     PY="$(scripts/python-oracle.sh | tail -n 1)"
# A re-run whose pin list, options and interpreter are unchanged only checks a stamp file (~10 ms).
# See docs/PYTHON-ORACLE.md for why torch is installed this way.
#
# Environment:
#   UPCYCLE_PY_VENV    venv location                       (default ~/.cache/upcycle-py/venv)
#   UPCYCLE_PY_PYTHON  base interpreter, CPython 3.11       (default python3)
#   UPCYCLE_PY_CUDA    stub: torch's CUDA libraries are replaced by generated no-op stubs (default;
#                      ~0.7 GB download, ~2 GB venv); pypi: install the real nvidia-* wheels as
#                      PyPI would (+2.3 GB download, ~6 GB venv) — bit-identical CPU results, slower.
#   UV_CACHE_DIR       uv's cache (default ~/.cache/uv); pip's own cache stays at ~/.cache/pip.
# Options:
#   --force            rebuild even if the stamp matches
#   --relock           print a fresh full pin list for TOP_LEVEL (to paste into PINS) and exit
set -euo pipefail

exec 3>&1 1>&2 # stdout is reserved for the final line

UV_VERSION=0.13.9
TOP_LEVEL="torch==2.15.0 transformers==5.23.0 safetensors==0.8.0 numpy==2.4.6 mergekit==0.1.5 pytest==9.2.0"

# Full resolution of TOP_LEVEL for CPython 3.11 / manylinux x86_64 (2026-11-23; pip 26.3 and uv agree),
# minus torch's CUDA runtime (nvidia-*, cuda-*, triton). Installed with --no-deps, so this list IS the
# environment: nothing else is resolved or fetched. Regenerate with --relock after changing TOP_LEVEL.
PINS="
accelerate==1.15.0
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
click==8.5.1
datasets==5.2.0
dill==0.4.1
filelock==4.2.12
fsspec==2026.9.0
h11==0.16.0
hf-xet==1.8.0
httpcore2==2.16.2
httpx2==2.16.2
huggingface-hub==2.4.0
idna==3.20
immutables==0.21
iniconfig==2.3.1
jinja2==3.1.6
markdown-it-py==4.3.0
markupsafe==3.0.4
mdurl==0.1.2
mergekit==0.1.5
mpmath==1.3.0
multiprocess==0.70.19
networkx==3.6.1
numpy==2.4.6
packaging==26.3
pandas==3.1.1
peft==0.21.2
pluggy==1.7.0
protobuf==7.36.2
psutil==7.2.2
pyarrow==26.0.1
pydantic==2.14.3
pydantic-core==2.50.4
pygments==2.21.0
pytest==9.2.0
python-dateutil==4.0.0
pyyaml==6.0.3
regex==2026.11.15
rich==15.0.0
safetensors==0.8.0
scipy==1.17.1
sentencepiece==0.2.3
setuptools==84.2.1
shellingham==1.5.4
sympy==1.14.0
tokenizers==0.23.3
torch==2.15.0
tqdm==4.70.1
transformers==5.23.0
truststore==0.10.5
typer==0.29.2
typing-extensions==4.16.0
typing-inspection==0.4.5
tzdata==2026.6
xxhash==4.1.0
"

# torch 2.15.0's Linux CUDA runtime, only for UPCYCLE_PY_CUDA=pypi.
CUDA_PINS="
cuda-bindings==13.5.0
cuda-pathfinder==1.9.0
cuda-toolkit==13.2.2
nvidia-cublas==13.4.1.3
nvidia-cuda-cccl==13.3.5.0.6
nvidia-cuda-cupti==13.2.86
nvidia-cuda-nvrtc==13.2.86
nvidia-cuda-runtime==13.2.86
nvidia-cudnn-cu13==9.26.0.51
nvidia-cufft==12.2.0.57
nvidia-cufile==1.17.1.22
nvidia-cusolver==12.2.0.11
nvidia-cusparse==12.7.10.12
nvidia-cusparselt-cu13==0.8.1
nvidia-nccl-cu13==2.30.7
nvidia-nvjitlink==13.5.37
nvidia-nvshmem-cu13==3.7.2
nvidia-nvtx==13.2.86
triton==3.9.0
"

# PyPI's Linux x86_64 torch wheels are CUDA builds: libtorch.so links libtorch_cuda.so, which links
# cudart, cuBLAS, cuDNN, NCCL, ... (~2.3 GB of nvidia-* wheels), so `import torch` fails without them.
# None of them is ever called on the CPU path, so for every library that `ldd` cannot find we build a
# tiny stand-in exporting the symbols (and symbol versions) torch imports; each function returns 0/NULL
# (so cudaGetDeviceCount reports 0 devices and torch.cuda.is_available() is False), *GetErrorString
# returns a message. libcuda.so.1 (the driver) is left absent, as on any machine without a GPU.
# Libraries that do resolve (all of them on aarch64, whose PyPI wheel is CPU-only) are left alone.
STUB_GEN='
import os, re, subprocess, sys, tempfile
libdir = sys.argv[1]
def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
marker = os.path.join(libdir, "UPCYCLE_CUDA_STUBS.txt")
if os.path.exists(marker):
    for name in open(marker).read().split():
        if os.path.exists(os.path.join(libdir, name)):
            os.remove(os.path.join(libdir, name))
sos = [os.path.join(libdir, f) for f in sorted(os.listdir(libdir)) if ".so" in f]
top = os.path.dirname(libdir)
sos += [os.path.join(top, f) for f in sorted(os.listdir(top)) if f.endswith(".so")]
missing, resolved = set(), set()
for so in sos + [os.path.realpath(sys.executable)]:
    for line in run("ldd", so).splitlines():
        m = re.match(r"\s*(\S+) => (not found|(\S+))", line)
        if m and m.group(2) == "not found":
            missing.add(m.group(1))
        elif m:
            resolved.add(os.path.realpath(m.group(3)))
missing.discard("libcuda.so.1")
if not missing:
    print("torch imports no missing library: no stubs needed", file=sys.stderr)
    sys.exit(0)
defined = set()
for so in set(sos) | resolved:
    for line in run("nm", "-D", "--defined-only", so).splitlines():
        parts = line.split()
        if len(parts) == 3:
            defined.add(parts[2].split("@")[0])
ver2lib = {}
for so in sos:
    current = None
    for line in run("readelf", "-V", "--wide", so).splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(r"Name: (\S+)", line)
        if m and current in missing:
            ver2lib[m.group(1)] = current
versioned = {lib: {} for lib in missing}
unversioned = set()
for so in sos:
    for line in run("nm", "-D", "--undefined-only", "--with-symbol-versions", so).splitlines():
        parts = line.split()
        if len(parts) != 2 or parts[0] != "U":
            continue
        name, _, ver = parts[1].partition("@")
        if ver in ver2lib:
            versioned[ver2lib[ver]].setdefault(ver, set()).add(name)
        elif not ver and name not in defined:
            unversioned.add(name)
with tempfile.TemporaryDirectory() as tmp:
    for lib in sorted(missing):
        nodes = dict(versioned[lib]) or {lib: set()}
        first = sorted(nodes)[0]
        nodes[first] = nodes[first] | unversioned  # unversioned refs bind to any library in scope
        src, script = os.path.join(tmp, "stub.c"), os.path.join(tmp, "stub.map")
        with open(src, "w") as f:
            f.write("static const char msg[] = \"CUDA is not available (CPU-only stub library)\";\n")
            for s in sorted(set().union(*nodes.values())):
                if s.endswith(("GetErrorString", "GetErrorName")):
                    f.write("const void *%s(void) { return msg; }\n" % s)
                else:
                    f.write("void *%s(void) { return 0; }\n" % s)
        with open(script, "w") as f:
            for i, ver in enumerate(sorted(nodes)):
                f.write(ver + " {\n  global:\n" + "".join("    %s;\n" % s for s in sorted(nodes[ver])))
                f.write("  local: *;\n};\n" if i == len(nodes) - 1 else "};\n")
        run("gcc", "-shared", "-fPIC", "-O1", "-fno-builtin", "-w", "-o", os.path.join(libdir, lib),
            "-Wl,-soname," + lib, "-Wl,--version-script," + script, src)
with open(marker, "w") as f:
    f.write("\n".join(sorted(missing)) + "\n")
print("built %d CUDA stub libraries (%d symbols) in %s" % (len(missing),
      sum(len(s) for v in versioned.values() for s in v.values()) + len(unversioned), libdir), file=sys.stderr)
'

SMOKE='
import importlib.metadata as md
import os, sys
import torch, transformers, safetensors, numpy, pytest
import mergekit.merge, mergekit.scripts.run_yaml, mergekit.scripts.moe  # what the CLIs import
from transformers import LlamaForCausalLM, MixtralForCausalLM, Qwen2MoeForCausalLM
x = torch.randn(3, dtype=torch.float64)
assert torch.allclose(x @ x, (x * x).sum()), "torch CPU matmul"
assert not torch.cuda.is_available()
for cli in ("mergekit-yaml", "mergekit-moe"):
    assert os.access(os.path.join(os.path.dirname(sys.executable), cli), os.X_OK), cli
print("oracle ok: torch %s, transformers %s, safetensors %s, numpy %s, mergekit %s, pytest %s" % (
    torch.__version__, transformers.__version__, safetensors.__version__, numpy.__version__,
    md.version("mergekit"), md.version("pytest")))
'

VENV="${UPCYCLE_PY_VENV:-$HOME/.cache/upcycle-py/venv}"
VENV="${VENV%/}"
MODE="${UPCYCLE_PY_CUDA:-stub}"
BASE_PY="${UPCYCLE_PY_PYTHON:-python3}"
CACHE_ROOT="$HOME/.cache/upcycle-py"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$HOME/.cache/pip}"
export UV_CACHE_DIR="${UV_CACHE_DIR:-$HOME/.cache/uv}"
export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
# uv reads neither pip.conf nor PIP_*: carry over the CA bundle and a mirror, if this machine sets them.
if [ -n "${PIP_CERT:-}" ] && [ -z "${SSL_CERT_FILE:-}" ]; then export SSL_CERT_FILE="$PIP_CERT"; fi
if [ -n "${PIP_INDEX_URL:-}" ] && [ -z "${UV_DEFAULT_INDEX:-}" ]; then export UV_DEFAULT_INDEX="$PIP_INDEX_URL"; fi

case "$MODE" in
  stub) REQS="$PINS" ;;
  pypi) REQS="$PINS$CUDA_PINS" ;;
  *) echo "python-oracle: UPCYCLE_PY_CUDA must be 'stub' or 'pypi', not '$MODE'"; exit 2 ;;
esac

FORCE=0
RELOCK=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --relock) RELOCK=1 ;;
    *) echo "python-oracle: unknown option $arg"; exit 2 ;;
  esac
done

KEY="$(printf '%s\n' "v1" "$MODE" "$BASE_PY" "$UV_VERSION" "$REQS" "$STUB_GEN" | sha256sum | cut -d' ' -f1)"
STAMP="$VENV/.upcycle-oracle-stamp"
venv_ok() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] && [ -x "$VENV/bin/python" ]; }

if [ "$FORCE" = 0 ] && [ "$RELOCK" = 0 ] && venv_ok; then
  echo "$VENV/bin/python" >&3
  exit 0
fi

start=$(date +%s)
step() { echo "▶ python-oracle: $* (+$(($(date +%s) - start))s)"; }
mkdir -p "$CACHE_ROOT" "$(dirname "$VENV")"

# uv, pinned, bootstrapped with pip (pip's HTTP cache stores nothing when the index omits cache headers,
# as the registry proxy here does; uv's cache keeps unpacked wheels, so a rebuild hard-links in ~1 s).
UV_HOME="$CACHE_ROOT/uv-$UV_VERSION"
UV="$UV_HOME/bin/uv"
if ! "$UV" --version >/dev/null 2>&1; then
  echo "▶ python-oracle: installing uv $UV_VERSION into $UV_HOME"
  rm -rf "$UV_HOME.tmp"
  "$BASE_PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-warn-script-location \
    --target "$UV_HOME.tmp" "uv==$UV_VERSION"
  rm -rf "$UV_HOME"
  mv "$UV_HOME.tmp" "$UV_HOME"
fi

if [ "$RELOCK" = 1 ]; then
  # shellcheck disable=SC2086
  printf '%s\n' $TOP_LEVEL | "$UV" pip compile --quiet --no-config --no-header --no-annotate \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 - |
    grep -vE '^(nvidia-|cuda-|triton==)' >&3
  exit 0
fi

exec 9>"$VENV.lock"
flock 9 # two suites calling this at once: the second waits, then takes the fast path
if [ "$FORCE" = 0 ] && venv_ok; then
  echo "$VENV/bin/python" >&3
  exit 0
fi

if [ "$MODE" = stub ]; then
  for tool in gcc nm readelf ldd; do
    command -v "$tool" >/dev/null || {
      echo "python-oracle: '$tool' is needed to build the CUDA stubs (apt-get install gcc binutils)," \
        "or set UPCYCLE_PY_CUDA=pypi to download the real CUDA libraries instead"
      exit 1
    }
  done
fi

PYTHON="$("$BASE_PY" -c 'import sys; print(sys.executable)')"
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$PYVER" = 3.11 ] || echo "python-oracle: WARNING: pins were verified on CPython 3.11, not $PYVER"

echo "▶ python-oracle: building $VENV (CUDA libraries: $MODE, python $PYVER)"
rm -rf "$VENV"
"$UV" venv --quiet --no-config --python "$PYTHON" "$VENV"
req_file="$(mktemp)"
trap 'rm -f "$req_file"' EXIT
printf '%s\n' "$REQS" >"$req_file"
"$UV" pip install --quiet --no-config --python "$VENV/bin/python" --no-deps --only-binary :all: \
  -r "$req_file"
step "installed $(grep -c == "$req_file") pinned wheels"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

if [ "$MODE" = stub ]; then
  "$VENV/bin/python" -c "$STUB_GEN" "$SITE/torch/lib"
fi

# Nothing here can reach the Hugging Face Hub: without this, a mistyped local path is taken for a
# repo id and each lookup retries for ~25 s before failing. Callers can still override the variables.
cat >"$SITE/upcycle_oracle_env.pth" <<'EOF'
import os; os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
EOF

step "smoke test"
"$VENV/bin/python" -c "$SMOKE"
echo "$KEY" >"$STAMP"
step "ready: $(du -sh "$VENV" | cut -f1)"
echo "$VENV/bin/python" >&3
