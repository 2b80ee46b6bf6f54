#!/usr/bin/env bash
# Set up camsight in ./.venv on a fresh Debian machine (idempotent, quick when done).
#   bash scripts/setup.sh         # runtime only
#   bash scripts/setup.sh --dev   # plus test and benchmark tools
#   bash scripts/setup.sh --cluster  # runtime plus Ray (camsight index --cluster)
#
# Python packages come from the lock files in requirements/ (exact versions and hashes), never
# from whatever the registry serves today; scripts/lock.sh refreshes them (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1
lock=requirements/runtime.lock
((dev)) && lock=requirements/dev.lock
# --cluster: the runtime plus Ray, for `camsight index --cluster` (the dev lock has Ray too).
[[ "${1:-}" == "--cluster" ]] && lock=requirements/cluster.lock

# opencv-python needs libGL and glib from the system.
missing=()
ldconfig -p | grep -q 'libGL.so.1' || missing+=(libgl1)
ldconfig -p | grep -q 'libglib-2.0.so.0' || missing+=(libglib2.0-0)
# The tests talk to a real MQTT broker, stream from a real RTSP server (GStreamer's, driven
# by the system Python), check exported clips with ffprobe and use the UI in Chromium.
if ((dev)); then
  if ! command -v mosquitto >/dev/null && [[ ! -x /usr/sbin/mosquitto ]]; then
    missing+=(mosquitto)
  fi
  if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null; then
    missing+=(gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
              gstreamer1.0-plugins-ugly gstreamer1.0-libav)
  fi
  command -v ffprobe >/dev/null || missing+=(ffmpeg)
  # The web UI tests drive Debian's Chromium with Playwright (it cannot download its own browser).
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
fi
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: camsight needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
    exit 1
  fi
  echo "setup: warning: the lock was made for Python 3.11; $("$python" --version 2>&1) may need other wheels" >&2
fi
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
stamp=".venv/.camsight-installed-$(basename "$lock")"
if [[ ! -f "$stamp" || "$lock" -nt "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  echo "setup: installing the locked packages ($lock) into .venv" >&2
  # --require-hashes: the lock's exact files or nothing. camsight itself goes in editable, without
  # dependencies, so nothing outside the lock can be pulled in behind it.
  .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r "$lock" 2>&1 \
    | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 \
    | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -c 'import camsight, cv2, av, onnxruntime, trackers; cv2.dnn.readNetFromTensorflow' \
    || { echo "setup: install failed" >&2; exit 1; }
  touch "$stamp"
fi

# The default detector's weights: copied from ../shared/models when it is there (checksum verified,
# no network), else downloaded from the pinned release. A failure here is not fatal: camsight then
# says which command fetches the model. Already installed and intact: nothing to do.
shared_models=${CAMSIGHT_SHARED:-../shared}/models
if [[ -f "$shared_models/yolox_nano.onnx" ]]; then
  .venv/bin/camsight models pull yolox-nano --from "$shared_models" \
    || echo "setup: warning: the default detector model is not installed" >&2
else
  .venv/bin/camsight models pull yolox-nano \
    || echo "setup: warning: the default detector model is not installed (camsight models pull yolox-nano)" >&2
fi
# The person attributes model (hats, long hair, bags for search), the same way; without it indexing
# still works, with clothing colours only.
attributes_model=person-attributes-recognition-crossroad-0230
if [[ -f "$shared_models/openvino/$attributes_model.xml" ]]; then
  .venv/bin/camsight models pull "$attributes_model" --from "$shared_models" \
    || echo "setup: warning: the person attributes model is not installed" >&2
else
  .venv/bin/camsight models pull "$attributes_model" \
    || echo "setup: warning: the person attributes model is not installed (camsight models pull $attributes_model)" >&2
fi
# The person re-identification model (one search result per person, "more like this"), the same
# way; without it both fall back to the colour descriptor.
reid_model=person-reidentification-retail-0288
if [[ -f "$shared_models/openvino/$reid_model.xml" ]]; then
  .venv/bin/camsight models pull "$reid_model" --from "$shared_models" \
    || echo "setup: warning: the person re-identification model is not installed" >&2
else
  .venv/bin/camsight models pull "$reid_model" \
    || echo "setup: warning: the person re-identification model is not installed (camsight models pull $reid_model)" >&2
fi
