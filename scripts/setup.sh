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
#   PSS_NO_SLURM      set to skip installing slurm-wlm and munge (the real-cluster sweep tests then skip)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PSS_VENV:-$ROOT/.venv}
PYTHON=${PSS_PYTHON:-$(command -v python3.11 || command -v python3)}
TORCH_SPEC=${PSS_TORCH:-torch==2.13.0}
WHEELHOUSE=${PSS_WHEELHOUSE:-$ROOT/../shared/wheels:$ROOT/wheels}
CONSTRAINTS=$ROOT/requirements/constraints.txt

# chromium drives the web leaderboard's browser test. Installed only when missing and apt-get can
# (root or password-less sudo); a failure is a warning, the test then skips. Runs before the
# up-to-date check so an existing .venv gets it too.
if [[ -z ${PSS_NO_CHROMIUM:-} ]] && ! command -v chromium >/dev/null 2>&1 \
    && ! command -v chromium-browser >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  as_root=""
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root="sudo -n"; else as_root="none"; fi
  fi
  if [[ $as_root == none ]]; then
    echo "[setup] chromium missing and apt-get needs root: the browser test will skip" >&2
  else
    echo "[setup] installing chromium with apt-get (for tests/test_leaderboard_browser.py)" >&2
    # shellcheck disable=SC2086
    { $as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium; } >/dev/null \
      || echo "[setup] warning: apt-get could not install chromium; the browser test will skip" >&2
  fi
fi

# A single-node Slurm cluster (Debian's slurm-wlm: slurmctld, slurmd and the clients; munge for
# authentication) runs the sweep's real-cluster tests (tests/test_sweep_slurm.py, which start and
# stop their own daemons and never use the system's services). Installed only when missing, as
# chromium above; a failure is a warning and those tests then skip.
if [[ -z ${PSS_NO_SLURM:-} ]] && command -v apt-get >/dev/null 2>&1; then
  slurm_missing=""
  for c in sbatch srun squeue scontrol scancel sinfo slurmctld slurmd munged; do
    command -v "$c" >/dev/null 2>&1 || [[ -x /usr/sbin/$c ]] || slurm_missing="$slurm_missing $c"
  done
  if [[ -n $slurm_missing ]]; then
    as_root=""
    if [[ $(id -u) -ne 0 ]]; then
      if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root="sudo -n"; else as_root="none"; fi
    fi
    if [[ $as_root == none ]]; then
      echo "[setup] Slurm missing ($slurm_missing) and apt-get needs root: the real-cluster sweep tests will skip" >&2
    else
      echo "[setup] installing slurm-wlm and munge with apt-get (for tests/test_sweep_slurm.py)" >&2
      # shellcheck disable=SC2086
      { $as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq \
          --no-install-recommends slurm-wlm munge; } >/dev/null \
        || echo "[setup] warning: apt-get could not install slurm-wlm and munge; the real-cluster sweep tests will skip" >&2
    fi
  fi
fi

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
