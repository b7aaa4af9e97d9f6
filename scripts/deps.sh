#!/usr/bin/env bash
# Install the Debian packages porthole builds and tests with, if missing.
set -euo pipefail
pkgs=(cmake make gcc pkg-config libuv1-dev libssl-dev openssl
      libhttp-parser-dev libwslay-dev libjansson-dev libsqlite3-dev libxml2-dev
      libcurl4-openssl-dev libcmocka-dev libyaml-dev sudo passwd iproute2 procps
      ca-certificates clang libclang-rt-14-dev
      openssh-server openssh-client rsync curl nodejs)
# The port forwarding tests (tests/e2e/test_ssh_session.py and friends)
# start their own sshd on loopback and drive ssh, scp, rsync and curl
# through sessions; `make bench` also runs OpenSSH side by side and
# profiles with perf. nodejs runs tests/e2e/quirky_client.mjs (its
# WebSocket client needs Node >= 20.10; older ones skip that test).
if [ "${1:-}" = "--bench" ]; then
	pkgs+=(linux-perf)
fi
# tests/e2e/test_proxy.py runs its own tinyproxy in the foreground with its
# own configuration; the policy-rc.d below keeps the package from starting
# the system's.
pkgs+=(tinyproxy)
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
	# Installing openssh-server must not start a listening sshd on this
	# machine: policy-rc.d keeps Debian's maintainer scripts from starting
	# any service, whichever package pulls it in.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The end-to-end tests drive the AWS CLI, boto3 and pexpect on the image's Python.
python3 - <<'PY'
import importlib, sys
missing = [m for m in ("boto3", "botocore", "pexpect", "awscli") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit("deps: python modules missing: " + ", ".join(missing))
PY
