#!/usr/bin/env bash
# make run: start portholed on 127.0.0.1:8443 with the embedded defaults
# (SQLite and its own CA under ./var), enrol this machine with
# porthole-agent, print how to open a shell, and stop both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
bin="$top/${BUILD:-build}/bin"
var="$top/var"
listen="${PORTHOLE_LISTEN:-127.0.0.1:8443}"
endpoint="https://$listen"
server_dir="$var/server"
agent_dir="$var/agent"

mkdir -p "$var"
chmod 700 "$var"
"$bin/portholed" init --data-dir "$server_dir"

export AWS_SHARED_CREDENTIALS_FILE="$server_dir/admin.credentials"
export AWS_PROFILE=porthole
export AWS_CA_BUNDLE="$server_dir/ca.pem"
export AWS_ENDPOINT_URL="$endpoint"
export AWS_DEFAULT_REGION="$(python3 -c "import json,sys;print(json.load(open(sys.argv[1])).get('Region','us-east-1'))" "$server_dir/config.json" 2>/dev/null || echo us-east-1)"
export AWS_CONFIG_FILE="$var/aws-config"
: > "$AWS_CONFIG_FILE"

pids=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "make run: stopping"
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	exit 0
}
trap stop INT TERM EXIT

"$bin/portholed" serve --data-dir "$server_dir" --listen "$listen" \
	2>>"$var/portholed.log" &
pids+=($!)
for _ in $(seq 100); do
	aws ssm describe-activations >/dev/null 2>&1 && break
	kill -0 "${pids[0]}" 2>/dev/null || { echo "portholed failed to start; see $var/portholed.log" >&2; tail -5 "$var/portholed.log" >&2; exit 1; }
	sleep 0.1
done

# The agent acts as this IAM role (its activation names it): what Session
# Manager needs (AmazonSSMManagedInstanceCore) and kms:Decrypt for
# KMS-encrypted sessions. Made once; an existing role is left alone.
role=porthole-local
if ! aws iam get-role --role-name "$role" >/dev/null 2>&1; then
	aws iam create-role --role-name "$role" \
		--description "porthole make run: this machine's agent" \
		--assume-role-policy-document '{"Version": "2012-10-17",
		  "Statement": [{"Effect": "Allow",
		    "Principal": {"Service": "ssm.amazonaws.com"},
		    "Action": "sts:AssumeRole"}]}' >/dev/null
	aws iam attach-role-policy --role-name "$role" \
		--policy-arn arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore
	aws iam put-role-policy --role-name "$role" \
		--policy-name porthole-kms-decrypt \
		--policy-document '{"Version": "2012-10-17",
		  "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt",
		    "Resource": "*"}]}'
fi

if [ ! -f "$agent_dir/agent.json" ]; then
	act=$(aws ssm create-activation --iam-role "$role" \
		--default-instance-name "$(hostname)" --registration-limit 1 --output json)
	id=$(python3 -c 'import json,sys;print(json.load(sys.stdin)["ActivationId"])' <<<"$act")
	code=$(python3 -c 'import json,sys;print(json.load(sys.stdin)["ActivationCode"])' <<<"$act")
	"$bin/porthole-agent" register --endpoint "$endpoint" --ca "$server_dir/ca.pem" \
		--code "$code" --id "$id" --state-dir "$agent_dir" --name "$(hostname)"
fi
instance=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["InstanceId"])' "$agent_dir/agent.json")

"$bin/porthole-agent" run --state-dir "$agent_dir" 2>>"$var/agent.log" &
pids+=($!)
for _ in $(seq 100); do
	s=$(aws ssm describe-instance-information --filters "Key=InstanceIds,Values=$instance" \
		--query 'InstanceInformationList[0].PingStatus' --output text 2>/dev/null || true)
	[ "$s" = "Online" ] && break
	sleep 0.1
done

cat <<MSG

porthole is running on $endpoint (logs: var/portholed.log, var/agent.log)
This machine is enrolled as $instance ($s).

Open a shell with the AWS CLI, from another terminal:

  export AWS_SHARED_CREDENTIALS_FILE=$AWS_SHARED_CREDENTIALS_FILE
  export AWS_PROFILE=$AWS_PROFILE
  export AWS_CA_BUNDLE=$AWS_CA_BUNDLE
  export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
  export AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION
  export PATH=$bin:\$PATH
  aws ssm start-session --target $instance

or with porthole's own client (same environment):

  porthole start-session --target $instance

or in a browser (trusting $server_dir/ca.pem), with an IAM user's
console password (aws iam create-user / create-login-profile):

  $endpoint/console/

Ctrl-C here stops portholed and the agent.
MSG
wait -n "${pids[@]}" || true
echo "make run: a process exited; see var/portholed.log and var/agent.log" >&2
