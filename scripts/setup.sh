#!/usr/bin/env bash
# One idempotent setup step for pss-bench: creates .venv, installs the pinned OpenMMLab stack
# (torch 2.13.0, mmengine 0.10.7, full mmcv 2.1.0, mmsegmentation 1.2.2) and pss-bench itself.
# A second run with nothing changed returns in about a second.
#
# Environment:
#   PSS_VENV          where the environment lives (default: <repo>/.venv)
#   PSS_PYTHON        interpreter that creates it (default: python3.11, else python3)
#   PSS_WHEELHOUSE    directories (colon-separated) searched for a prebuilt mmcv 2.1.0 wheel
#                     (default: <repo>/../shared/wheels, then <repo>/wheels)
#   PSS_TORCH         torch requirement (default: torch==2.13.0; on a CUDA machine pass e.g.
#                     "torch==2.13.0 --index-url <your CUDA wheel index>")
#   PSS_NO_CHROMIUM   set to skip installing chromium (the leaderboard's browser test then skips)
#   PSS_NO_SLURM      set to skip installing slurm-wlm and munge (the real-Slurm sweep tests then skip)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PSS_VENV:-$ROOT/.venv}
PYTHON=${PSS_PYTHON:-$(command -v python3.11 || command -v python3)}
TORCH_SPEC=${PSS_TORCH:-torch==2.13.0}
WHEELHOUSE=${PSS_WHEELHOUSE:-$ROOT/../shared/wheels:$ROOT/wheels}
CONSTRAINTS=$ROOT/requirements/constraints.txt

# Debian packages the tests drive for real: chromium (the web leaderboard's browser test) and
# slurm-wlm + munge (a single-node Slurm cluster for the sweep's tests, tests/slurm_cluster.py).
# Installed only when missing and apt-get can (root or password-less sudo); a failure is a warning,
# those tests then skip. Runs before the up-to-date check so an existing .venv gets them too.
apt_install() {  # apt_install <what it is for> <skip variable value> <command that must exist> <packages...>
  local why=$1 skip=$2 probe=$3; shift 3
  if [[ -n $skip ]] || command -v "$probe" >/dev/null 2>&1 || [[ -x /usr/sbin/$probe ]] \
      || ! command -v apt-get >/dev/null 2>&1; then
    return 0
  fi
  local as_root=""
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root="sudo -n"; else as_root="none"; fi
  fi
  if [[ $as_root == none ]]; then
    echo "[setup] $* missing and apt-get needs root: $why will skip" >&2
    return 0
  fi
  echo "[setup] installing $* with apt-get (for $why)" >&2
  # shellcheck disable=SC2086
  { $as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "$@"; } >/dev/null \
    || echo "[setup] warning: apt-get could not install $*; $why will skip" >&2
}
if ! command -v chromium-browser >/dev/null 2>&1; then
  apt_install "tests/test_leaderboard_browser.py" "${PSS_NO_CHROMIUM:-}" chromium chromium
fi
apt_install "tests/test_sweep_slurm.py" "${PSS_NO_SLURM:-}" slurmctld slurm-wlm munge

# The stamp records what the environment was built from; same inputs -> nothing to do.
fingerprint=$(cat "$ROOT/pyproject.toml" "$CONSTRAINTS" "$ROOT/scripts/setup.sh" | sha256sum | cut -c1-16)
stamp=$VENV/.pss-bench-setup
if [[ -f $stamp && $(cat "$stamp") == "$fingerprint" ]] && "$VENV/bin/python" -c "import mmcv.ops, mmseg, pss_bench" 2>/dev/null; then
  echo "[setup] environment up to date: $VENV"
  exit 0
fi

log() { echo "[setup] $*" >&2; }
[[ -x $VENV/bin/python ]] || { log "creating $VENV with $PYTHON"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS")

# torch first and explicitly pinned: an unpinned torch pulls a multi-GB CUDA build.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(not torch.__version__.startswith('2.13.0'))" 2>/dev/null; then
  log "installing $TORCH_SPEC"
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q $TORCH_SPEC
fi
# Build prerequisites of the mmcv sdist (it imports pkg_resources, hence setuptools<81).
"${PIP[@]}" "setuptools<81" wheel ninja numpy

if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '2.1.0')" 2>/dev/null; then
  wheel=""
  IFS=: read -r -a dirs <<< "$WHEELHOUSE"
  pytag=$("$VENV/bin/python" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
  for d in "${dirs[@]}"; do
    for w in "$d"/mmcv-2.1.0-"$pytag"-*.whl; do [[ -f $w ]] && { wheel=$w; break 2; }; done
  done
  if [[ -n $wheel ]]; then
    log "installing mmcv from $wheel"
    "${PIP[@]}" "$wheel"
  else
    log "no mmcv 2.1.0 wheel found in $WHEELHOUSE: building from the sdist (about 20 minutes on 2 cores; pip caches the wheel)"
    MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation mmcv==2.1.0
  fi
fi

log "installing pss-bench and its pinned dependencies"
"${PIP[@]}" -e "$ROOT[test]"
# torchvision only where it imports (a CUDA torch with its matching wheel); nothing on CPU needs it.
"$VENV/bin/python" -c "import mmcv.ops, mmseg, mmseg.models, pss_bench" >/dev/null
echo "$fingerprint" > "$stamp"
log "ready: $VENV"
