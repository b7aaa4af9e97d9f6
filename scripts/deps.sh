#!/usr/bin/env bash
# Install the Debian packages porthole builds and tests with, if missing.
set -euo pipefail
pkgs=(cmake make gcc pkg-config libuv1-dev libssl-dev openssl
      libhttp-parser-dev libwslay-dev libjansson-dev libsqlite3-dev
      libcurl4-openssl-dev libcmocka-dev sudo passwd iproute2 procps
      ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: need root to install packages" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The end-to-end tests drive the AWS CLI, boto3 and pexpect on the image's Python.
python3 - <<'PY'
import importlib, sys
missing = [m for m in ("boto3", "botocore", "pexpect", "awscli") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit("deps: python modules missing: " + ", ".join(missing))
PY
