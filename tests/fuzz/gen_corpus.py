#!/usr/bin/env python3
"""Write the seed corpora of the fuzz harnesses: tests/fuzz/corpus/<name>/.

Seeds are small, real inputs in each harness's input format (see the
comment at the top of each fuzz_<name>.c): frames as the agent and client
send them, requests as botocore signs them, policies, documents and API
calls as the AWS CLI sends them. Deterministic; run from anywhere:

    python3 tests/fuzz/gen_corpus.py

Files found by fuzzing are not written here: reproducers go to
regressions/<name>/ by hand (docs/fuzzing.md).
"""
import glob
import hashlib
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
SIGV4_FIXTURES = os.path.join(HERE, "..", "unit", "fixtures", "sigv4")
CREATED_MS = 1767225600000
MSG_ID = bytes(range(1, 17))


def jb(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def u16(n):
    return struct.pack(">H", n)


def lp(b):
    """A fuzzin_bytes operand: big-endian 16-bit length, then the bytes."""
    return u16(len(b)) + b


def frame(mtype, seq, flags, ptype, payload, created=CREATED_MS):
    """A ClientMessage (spec 3.1): 120-byte header, then the payload."""
    h = struct.pack(">I", 116)
    h += mtype.encode().ljust(32, b" ")
    h += struct.pack(">IQqQ", 1, created, seq, flags)
    h += MSG_ID[8:] + MSG_ID[:8]          # spec 3.2: halves swapped
    h += hashlib.sha256(payload).digest()
    h += struct.pack(">II", ptype, len(payload))
    return h + payload


def ack(seq):
    return jb({"AcknowledgedMessageType": "input_stream_data",
               "AcknowledgedMessageId": "01020304-0506-0708-090a-0b0c0d0e0f10",
               "AcknowledgedMessageSequenceNumber": seq,
               "IsSequentialMessage": True})


def hs_request(kms):
    actions = [{"ActionType": "SessionType",
                "ActionParameters": {"SessionType": "Standard_Stream",
                                     "Properties": None}}]
    if kms:
        actions.append({"ActionType": "KMSEncryption",
                        "ActionParameters": {
                            "KMSKeyId": "alias/session",
                            "Challenge": "AAECAwQFBgcICQoLDA0ODw=="}})
    return jb({"AgentVersion": "3.3.1000.0",
               "RequestedClientActions": actions})


def hs_response(kms, ack_challenge=False):
    acts = [{"ActionType": "SessionType", "ActionStatus": 1,
             "ActionResult": None, "Error": ""}]
    if kms:
        res = {"KMSCipherTextKey": "AQIDBAUGBwg=", "KMSCipherTextHash": None}
        if ack_challenge:
            res["ChallengeAcknowledgement"] = True
        acts.append({"ActionType": "KMSEncryption", "ActionStatus": 1,
                     "ActionResult": res, "Error": ""})
    return jb({"ClientVersion": "1.2.700.0",
               "ProcessedClientActions": acts, "Errors": None})


class Corpus:
    def __init__(self, name):
        self.dir = os.path.join(OUT, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)

    def add(self, label, data):
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(self.dir, label), "wb") as f:
            f.write(data)


def clientmsg():
    c = Corpus("clientmsg")
    c.add("input_ls", frame("input_stream_data", 0, 0, 1, b"ls -l\r"))
    c.add("output", frame("output_stream_data", 7, 0, 1,
                          b"total 0\r\n\x1b[0m$ "))
    c.add("ack", frame("acknowledge", 0, 3, 0, ack(7)))
    c.add("syn_size", frame("input_stream_data", 1, 1, 3,
                            jb({"cols": 80, "rows": 24})))
    c.add("handshake_request", frame("output_stream_data", 0, 0, 5,
                                     hs_request(True)))
    c.add("channel_closed", frame("channel_closed", 0, 3, 0, jb({
        "MessageId": "x", "CreatedDate": "2026-01-01T00:00:00Z",
        "DestinationId": "s-1", "SessionId": "s-1",
        "MessageType": "channel_closed", "SchemaVersion": 1,
        "Output": "Session s-1 terminated."})))
    c.add("empty_payload", frame("start_publication", 0, 3, 0, b""))
    c.add("exit_code", frame("output_stream_data", 9, 2, 12,
                             b"EXIT_CODE: 0"))


def sigv4():
    c = Corpus("sigv4")
    for path in sorted(glob.glob(os.path.join(SIGV4_FIXTURES, "*.req"))):
        with open(path, "rb") as f:
            c.add(os.path.basename(path)[:-4], f.read())
    # Percent escapes cut short or not hex, in the path and the query
    # (decoded by hex_byte, src/common/hex.c), one at the very end.
    head = (b"Host: ssm.us-east-1.amazonaws.com\r\n"
            b"X-Amz-Date: 20150830T123600Z\r\n\r\n")
    c.add("bad_escapes", b"GET /a%2/b%zz/%%41/%C3%28 HTTP/1.1\r\n" + head)
    c.add("bad_escapes_query", b"GET /?a=%4&b=%G1&%=x&c=%%&d=%e%80&e=%"
          b" HTTP/1.1\r\n" + head)


def kms_policy():
    c = Corpus("kms_policy")
    acct = "123456789012"
    root = "arn:aws:iam::%s:root" % acct
    c.add("default", jb({"Version": "2012-10-17", "Id": "key-default-1",
                         "Statement": [{
                             "Sid": "Enable IAM User Permissions",
                             "Effect": "Allow",
                             "Principal": {"AWS": root},
                             "Action": "kms:*", "Resource": "*"}]}))
    c.add("instances", jb({"Version": "2012-10-17", "Statement": [
        {"Sid": "admins", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam::%s:user/admin" % acct]},
         "Action": ["kms:*"], "Resource": "*"},
        {"Sid": "servers", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::%s:role/porthole-role" % acct},
         "Action": "kms:Decrypt", "Resource": "*"},
        {"Sid": "no-bob", "Effect": "Deny",
         "Principal": {"AWS": "arn:aws:iam::%s:user/bob" % acct},
         "Action": "kms:Gen*", "Resource": "*"}]}))
    c.add("star_condition", jb({"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt",
        "Resource": "*", "Condition": {"StringEquals": {
            "kms:EncryptionContext:aws:ssm:SessionId": "s-1"}}}}))
    c.add("account_id", jb({"Statement": [{
        "Effect": "Deny", "Principal": {"AWS": acct},
        "NotAction": "kms:Describe?ey", "Resource": "*"}]}))
    c.add("glob", "kms:*Data?ey*\nkms:GenerateDataKeyWithoutPlaintext")


def escape():
    c = Corpus("escape")
    c.add("disconnect", b"\xfe" + b"\x05" + b"ls\r~.")
    c.add("help_then_tilde", b"\xfe" + b"\x01" + b"~?~~x\r~x\n~" + b"\x03"
          + b".\r")
    c.add("ctrl_bracket", b"\x1d" + b"\x10" + b"\x1d.\x1d\x1d\r\x1d?")
    c.add("off", b"\xff" + b"\x07" + b"~.~?~~")
    c.add("parse_caret", b"^]")
    c.add("parse_none", b"none")


def client_proto():
    c = Corpus("client_proto")
    c.add("hs_standard", hs_request(False))
    c.add("hs_kms", hs_request(True))
    c.add("hs_port", jb({"AgentVersion": "3", "RequestedClientActions": [
        {"ActionType": "SessionType", "ActionParameters": {
            "SessionType": "Port", "Properties": {"portNumber": "80"}}},
        {"ActionType": "Unknown", "ActionParameters": {}}]}))
    c.add("closed", jb({"SessionId": "s-0123", "Output":
                        "Session s-0123 \x1b[31mterminated\r\n",
                        "SessionStatus": "Failed"}))
    c.add("challenge", jb({"Challenge": "AAECAwQFBgcICQoLDA0ODxAREhM="}))
    c.add("complete", jb({"HandshakeTimeToComplete": 1000000,
                          "CustomerMessage":
                          "This session is encrypted using AWS KMS."}))
    c.add("exit_code", b"EXIT_CODE: 127")


def agent_handshake():
    c = Corpus("agent_handshake")
    # flags: bits 0-1 session type - 1, bit 2 KMS. Ops: 0 deliver
    # (type, bytes), 1 Decrypt answered, 3 tick, 4 honest answer.
    c.add("kms_full", b"\x04" + b"\x00\x06" + lp(hs_response(True)) +
          b"\x01" + b"\x04")
    c.add("kms_ack", b"\x04" + b"\x00\x06" + lp(hs_response(True, True)) +
          b"\x01" + b"\x00\x01" + lp(b"ls\r") + b"\x04")
    c.add("noninteractive", b"\x02" + b"\x00\x06" + lp(hs_response(False)))
    c.add("timeout", b"\x04" + b"\x03" + u16(2000) + b"\x00\x06" +
          lp(hs_response(True)))
    c.add("decrypt_fails", b"\x04" + b"\x00\x06" + lp(hs_response(True)) +
          b"\x02")
    c.add("response_only", hs_response(True))


def channel():
    c = Corpus("channel")
    # flags: bit 0 agent role. Ops: 0 peer frame (type index, seq delta,
    # flags, payload type, bytes), 1 raw frame, 2 send, 3 tick, 4 resend,
    # 5 crypto, 6 send fails, 7 deliver busy, 8 control.
    inp = b"\x00\x00\x00\x00\x01" + lp(b"ls\r")
    c.add("client_in_order", b"\x00" + b"\x00\x01\x00\x00\x01" +
          lp(b"out1") + b"\x00\x01\x01\x00\x01" + lp(b"out2") +
          b"\x02" + lp(b"ls\r") + b"\x01" + b"\x00\x02\x00\x03\x00" +
          lp(b"A\x00") + b"\x03" + u16(500))
    c.add("agent_out_of_order", b"\x01" + b"\x00\x00\x02\x00\x01" +
          lp(b"later") + b"\x00\x00\x01\x00\x01" + lp(b"next") + inp)
    c.add("retransmit", b"\x00" + b"\x02" + lp(b"x") + b"\x01" + b"\x06" +
          b"\x02" + lp(b"y") + b"\x01" + b"\x03" + u16(3000) + b"\x04" +
          b"\x06" + b"\x03" + u16(60000))
    c.add("encrypted", b"\x01" + b"\x05" + b"\x02" + lp(b"secret") +
          b"\x01" + b"\x00\x00\x00\x00\x01" + lp(b"Ehello"))
    c.add("raw_frame", b"\x00" + b"\x01" + lp(frame(
        "output_stream_data", 0, 0, 1, b"hi")))
    c.add("control", b"\x01" + b"\x08" + lp(jb({"SessionState":
                                                 "Connected"})) +
          b"\x00\x03\x00\x03\x00" + lp(jb({"Output": "bye"})))


def documents():
    c = Corpus("documents")
    shell = jb({"schemaVersion": "1.0", "description": "ops shell",
                "sessionType": "Standard_Stream",
                "inputs": {"idleSessionTimeout": "20", "runAsEnabled": False,
                           "kmsKeyId": "", "shellProfile": {
                               "linux": "cd ~", "windows": ""}}})
    inter = jb({"schemaVersion": "1.0", "description": "top",
                "sessionType": "InteractiveCommands",
                "parameters": {"delay": {
                    "type": "String", "description": "seconds",
                    "default": "2", "allowedPattern": "^[0-9]+$",
                    "allowedValues": ["1", "2", "5"]}},
                "properties": {"linux": {
                    "commands": "top -d {{ delay }}",
                    "runAsElevated": False}}})
    port = jb({"schemaVersion": "1.0", "sessionType": "Port",
               "parameters": {"portNumber": {
                   "type": "String", "default": "80",
                   "allowedPattern": "^([1-9][0-9]{0,4})$"}},
               "properties": {"portNumber": "{{ portNumber }}",
                              "type": "LocalPortForwarding"}})
    cmd = jb({"schemaVersion": "2.2", "description": "uptime",
              "parameters": {"cmd": {"type": "String", "default": "uptime"}},
              "mainSteps": [{"action": "aws:runShellScript", "name": "run",
                             "inputs": {"runCommand": ["{{ cmd }}"]}}]})
    # selector: bit 0 Command, bits 1-2 format (none, JSON, YAML, TEXT).
    c.add("session_shell", b"\x02" + lp(b"{}") + shell)
    c.add("interactive", b"\x00" + lp(jb({"delay": ["5"]})) + inter)
    c.add("interactive_bad_value", b"\x00" + lp(jb({"delay": ["9"]})) +
          inter)
    c.add("port_default", b"\x00" + lp(b"{}") + port)
    c.add("command", b"\x01" + lp(jb({"cmd": ["df -h"]})) + cmd)
    c.add("yaml", b"\x04" + lp(b"1.0.2\n1.0.10") +
          b"schemaVersion: '1.0'\nsessionType: Standard_Stream\n")
    c.add("versions", b"\x00" + lp(b"2.3.68.0\n2.3.1000.0") + b"{}")


def cmddoc():
    c = Corpus("cmddoc")
    shell = jb({"schemaVersion": "1.2", "description": "shell",
                "parameters": {
                    "commands": {"type": "StringList", "minItems": 1},
                    "workingDirectory": {"type": "String", "default": ""},
                    "executionTimeout": {
                        "type": "String", "default": "3600",
                        "allowedPattern": "([1-9][0-9]{0,4})|(172800)"}},
                "runtimeConfig": {"aws:runShellScript": {"properties": [{
                    "id": "0.aws:runShellScript",
                    "runCommand": "{{ commands }}",
                    "workingDirectory": "{{ workingDirectory }}",
                    "timeoutSeconds": "{{ executionTimeout }}"}]}}})
    typed = jb({"schemaVersion": "2.2", "description": "typed",
                "parameters": {
                    "n": {"type": "Integer", "default": 5},
                    "b": {"type": "Boolean", "default": True},
                    "m": {"type": "StringMap", "default": {"k": "v"}},
                    "ml": {"type": "MapList", "default": [{"a": "1"}]},
                    "s": {"type": "String", "allowedValues": ["x", "y"]}},
                "mainSteps": [
                    {"action": "aws:runShellScript", "name": "lin",
                     "precondition": {"StringEquals": ["platformType",
                                                       "Linux"]},
                     "inputs": {"runCommand": ["echo {{ s }} {{ n }}"],
                                "timeoutSeconds": "{{ n }}"}},
                    {"action": "aws:updateSsmAgent", "name": "up",
                     "inputs": {"agentName": "amazon-ssm-agent",
                                "source": "https://example/manifest.json",
                                "allowDowngrade": "{{ b }}"}}]})
    yaml = (b"schemaVersion: '2.2'\ndescription: yaml\nparameters:\n"
            b"  who:\n    type: String\n    default: world\n"
            b"mainSteps:\n  - action: aws:runPowerShellScript\n"
            b"    name: hello\n    inputs:\n      runCommand:\n"
            b"        - echo {{ who }}\n        - |\n          multi\n"
            b"          line\n")
    c.add("shell_json", b"\x00" + lp(jb({"commands": ["id", "ls"]})) + shell)
    c.add("shell_bad_timeout", b"\x00" +
          lp(jb({"commands": ["id"], "executionTimeout": ["0"]})) + shell)
    c.add("typed_json", b"\x00" + lp(jb({"s": ["x"], "n": ["-3"]})) + typed)
    c.add("typed_missing", b"\x00" + lp(b"{}") + typed)
    c.add("yaml", b"\x01" + lp(jb({"who": ["you"]})) + yaml)
    c.add("yaml_alias", b"\x01" + lp(b"{}") +
          b"a: &x [1, 2]\nb: *x\nc: [*x, *x]\n")
    c.add("yaml_deep", b"\x01" + lp(b"{}") + b"[" * 100)
    c.add("yaml_flow", b"\x01" + lp(b"{}") +
          b"{schemaVersion: '2.2', mainSteps: [{action: aws:runShellScript,"
          b" name: a, inputs: {runCommand: [true, 1, ~, 0755]}}]}")


def agent_job():
    c = Corpus("agent_job")

    def job(topic, content, job_id="aws.ssm.c-1.mi-0123456789abcdef0"):
        return jb({"Content": content if isinstance(content, str) else
                   jb(content).decode(), "JobId": job_id, "Topic": topic,
                   "SchemaVersion": 1})
    shell = {"schemaVersion": "1.2", "runtimeConfig": {
        "aws:runShellScript": {"properties": [{
            "id": "0.aws:runShellScript", "runCommand": ["echo hi", "id"],
            "workingDirectory": "", "timeoutSeconds": "3600"}]}}}
    steps = {"schemaVersion": "2.2", "mainSteps": [
        {"action": "aws:runShellScript", "name": "lin",
         "precondition": {"StringEquals": ["platformType", "Linux"]},
         "inputs": {"runCommand": "echo {{ who }}"}},
        {"action": "aws:runPowerShellScript", "name": "win",
         "precondition": {"StringEquals": ["platformType", "Windows"]},
         "inputs": {"runCommand": ["Write-Output hi"]}},
        {"action": "aws:updateSsmAgent", "name": "up",
         "inputs": {"agentName": "amazon-ssm-agent"}},
        {"action": "aws:unknown", "name": "odd",
         "precondition": {"Bogus": ["a", "b"]}}],
        "parameters": {"who": {"type": "String", "default": "x"}}}
    send = {"CommandId": "c-1", "DocumentName": "AWS-RunShellScript",
            "DocumentContent": shell, "Parameters": {"commands": ["id"]},
            "OutputS3BucketName": "bkt", "OutputS3KeyPrefix": "p",
            "CloudWatchOutputEnabled": "false"}
    c.add("send_v12", job("aws.ssm.sendCommand.test", send))
    send2 = dict(send, DocumentContent=steps, CommandId="c-2")
    c.add("send_v22", job("aws.ssm.sendCommand", send2))
    c.add("send_lower_keys", jb({
        "content": jb({"commandid": "c-3", "documentcontent": shell})
        .decode(), "jobid": "aws.ssm.c-3.mi-1",
        "topic": "aws.ssm.sendCommand"}))
    c.add("cancel", job("aws.ssm.cancelCommand", {
        "CancelMessageId": "aws.ssm.c-1.mi-0123456789abcdef0"},
        job_id="aws.ssm.k-1.mi-0123456789abcdef0"))
    c.add("bad_content", job("aws.ssm.sendCommand", "{not json"))
    c.add("reply_ack", jb({"jobId": "aws.ssm.c-1.mi-1",
                           "acknowledgedMessageId":
                           "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}))
    c.add("stored_reply", jb({
        "messageId": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "commandId": "c-1", "final": True, "createdMs": CREATED_MS,
        "payload": "{}"}))
    c.add("utf8", "h\u00e9llo \u2603 ".encode() + b"\xff\xc0\x80\xed\xa0"
          b"\x80\xf4\x90\x80\x80" + "\U0001f600".encode())


SSM, KMS = 0, 1
ADMIN, BOB, INSTANCE = 0, 2, 4
SSM_ACTIONS = [
    "AddTagsToResource", "CreateActivation", "CreateDocument",
    "DeleteActivation", "DeleteDocument", "DeregisterManagedInstance",
    "DescribeActivations", "DescribeDocument", "DescribeInstanceInformation",
    "DescribeSessions", "GetConnectionStatus", "GetDocument",
    "ListDocumentVersions", "ListDocuments", "ListTagsForResource",
    "RemoveTagsFromResource", "ResumeSession", "StartSession",
    "TerminateSession", "UpdateDocument", "UpdateDocumentDefaultVersion"]
KMS_ACTIONS = [
    "CancelKeyDeletion", "CreateAlias", "CreateKey", "Decrypt",
    "DeleteAlias", "DescribeKey", "DisableKey", "EnableKey", "Encrypt",
    "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GetKeyPolicy",
    "ListAliases", "ListKeys", "ListResourceTags", "PutKeyPolicy",
    "ScheduleKeyDeletion", "TagResource", "UntagResource", "UpdateAlias"]


def call(svc, who, action, body):
    names = KMS_ACTIONS if svc == KMS else SSM_ACTIONS
    return bytes([svc | who, names.index(action)]) + lp(jb(body))


def api():
    c = Corpus("api")
    ctx = {"aws:ssm:SessionId": "$SESSION", "aws:ssm:TargetId": "$INSTANCE"}
    c.add("kms_session_key", b"".join([
        call(KMS, ADMIN, "CreateKey", {"Description": "sessions",
                                       "Tags": [{"TagKey": "team",
                                                 "TagValue": "ops"}]}),
        call(KMS, ADMIN, "CreateAlias", {"AliasName": "alias/session",
                                         "TargetKeyId": "$KEY"}),
        call(KMS, ADMIN, "GenerateDataKey", {"KeyId": "alias/session",
                                             "NumberOfBytes": 64,
                                             "EncryptionContext": ctx}),
        call(KMS, INSTANCE, "Decrypt", {"CiphertextBlob": "AAAA",
                                        "EncryptionContext": ctx}),
        call(KMS, BOB, "DescribeKey", {"KeyId": "$KEY"}),
        call(KMS, ADMIN, "ListAliases", {"Limit": 5})]))
    c.add("kms_policy", b"".join([
        call(KMS, ADMIN, "CreateKey", {}),
        call(KMS, ADMIN, "PutKeyPolicy", {
            "KeyId": "$KEY", "PolicyName": "default",
            "Policy": json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {
                    "AWS": "arn:aws:iam::123456789012:user/bob"},
                "Action": "kms:*", "Resource": "*"}]})}),
        call(KMS, BOB, "Encrypt", {"KeyId": "$KEY", "Plaintext": "aGk="}),
        call(KMS, ADMIN, "GetKeyPolicy", {"KeyId": "$KEY",
                                          "PolicyName": "default"}),
        call(KMS, ADMIN, "ScheduleKeyDeletion", {"KeyId": "$KEY",
                                                 "PendingWindowInDays": 7}),
        call(KMS, ADMIN, "CancelKeyDeletion", {"KeyId": "$KEY"})]))
    c.add("ssm_session", b"".join([
        call(SSM, ADMIN, "StartSession", {"Target": "$INSTANCE"}),
        call(SSM, ADMIN, "DescribeSessions", {"State": "Active"}),
        call(SSM, ADMIN, "ResumeSession", {"SessionId": "$SESSION"}),
        call(SSM, BOB, "TerminateSession", {"SessionId": "$SESSION"}),
        call(SSM, ADMIN, "TerminateSession", {"SessionId": "$SESSION"}),
        call(SSM, ADMIN, "DescribeSessions", {"State": "History",
                                              "Filters": [{
                                                  "key": "Target",
                                                  "value": "$INSTANCE"}]})]))
    c.add("ssm_activations", b"".join([
        call(SSM, ADMIN, "CreateActivation", {
            "IamRole": "porthole-role", "RegistrationLimit": 2,
            "DefaultInstanceName": "web", "Tags": [{"Key": "env",
                                                    "Value": "prod"}]}),
        call(SSM, ADMIN, "DescribeActivations", {"Filters": [{
            "FilterKey": "ActivationIds", "FilterValues": ["$ACTIVATION"]}],
            "MaxResults": 1}),
        call(SSM, ADMIN, "DescribeInstanceInformation", {"Filters": [{
            "Key": "PingStatus", "Values": ["Online", "ConnectionLost"]}]}),
        call(SSM, ADMIN, "AddTagsToResource", {
            "ResourceType": "ManagedInstance", "ResourceId": "$INSTANCE",
            "Tags": [{"Key": "role", "Value": "db"}]}),
        call(SSM, ADMIN, "ListTagsForResource", {
            "ResourceType": "ManagedInstance", "ResourceId": "$INSTANCE"}),
        call(SSM, ADMIN, "DeleteActivation", {"ActivationId":
                                              "$ACTIVATION"})]))
    top = json.dumps({"schemaVersion": "1.0", "description": "top",
                      "sessionType": "InteractiveCommands",
                      "parameters": {"delay": {
                          "type": "String", "default": "2",
                          "allowedValues": ["1", "2"]}},
                      "properties": {"linux": {
                          "commands": "top -d {{ delay }}",
                          "runAsElevated": False}}})
    c.add("ssm_documents", b"".join([
        call(SSM, ADMIN, "CreateDocument", {
            "Name": "Ops-Top", "DocumentType": "Session",
            "DocumentFormat": "JSON", "Content": top}),
        call(SSM, ADMIN, "UpdateDocument", {
            "Name": "Ops-Top", "DocumentVersion": "$LATEST",
            "Content": top.replace("top -d", "top -b -d")}),
        call(SSM, ADMIN, "UpdateDocumentDefaultVersion", {
            "Name": "Ops-Top", "DocumentVersion": "2"}),
        call(SSM, ADMIN, "StartSession", {
            "Target": "$INSTANCE", "DocumentName": "Ops-Top",
            "Parameters": {"delay": ["1"]}}),
        call(SSM, ADMIN, "ListDocumentVersions", {"Name": "Ops-Top"}),
        call(SSM, ADMIN, "GetDocument", {"Name":
                                         "SSM-SessionManagerRunShell"}),
        call(SSM, ADMIN, "DeleteDocument", {"Name": "Ops-Top"})]))
    c.add("unknown_action", bytes([SSM | ADMIN, 0xff]) +
          lp(b"GetParameter") + lp(b"{}"))


def http():
    c = Corpus("http")

    def chunks(b):
        out = b""
        while b:
            out += bytes([min(len(b), 200)]) + b[:200]
            b = b[200:]
        return out
    body = jb({"Target": "mi-0123456789abcdef0"})
    post = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: AmazonSSM.StartSession\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body
    c.add("post", chunks(post))
    c.add("pipelined", chunks(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n"))
    c.add("later", chunks(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n") +
          b"\x00" + b"\x00")
    c.add("chunked", chunks(b"POST /c HTTP/1.1\r\nHost: x\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n"
                            b"5\r\nhello\r\n0\r\n\r\n"))
    c.add("upgrade", chunks(b"GET /ws HTTP/1.1\r\nHost: x\r\n"
                            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            b"Sec-WebSocket-Version: 13\r\n\r\n" +
                            ws_frame(1, b"hello", True)))
    c.add("split_head", b"\x03GET\x05 /x H\x0aTTP/1.0\r\n\r\n")


def ws_frame(opcode, payload, masked, fin=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = bytes([b0, (0x80 if masked else 0) | n])
    elif n < 65536:
        hdr = bytes([b0, (0x80 if masked else 0) | 126]) + u16(n)
    else:
        hdr = bytes([b0, (0x80 if masked else 0) | 127]) + \
            struct.pack(">Q", n)
    if not masked:
        return hdr + payload
    mask = b"\x11\x22\x33\x44"
    return hdr + mask + bytes(p ^ mask[i % 4] for i, p in enumerate(payload))


def ws():
    c = Corpus("ws")

    def feed(b):
        return b"\x00" + lp(b)
    # flags: bit 0 client side, bit 1 echo. Ops: 0 feed, 1 send, 2 pause,
    # 3 max message, 4 close, 5 backpressure, 6 keepalive, 7 peer close.
    c.add("server_text", b"\x02" + feed(ws_frame(1, b"hello", True)) +
          feed(ws_frame(2, frame("input_stream_data", 0, 0, 1, b"ls\r"),
                        True)))
    c.add("server_fragments", b"\x00" +
          feed(ws_frame(2, b"part1", True, fin=False) +
               ws_frame(9, b"ping", True) +
               ws_frame(0, b"part2", True)) + b"\x02" +
          feed(ws_frame(1, b"x", True)) + b"\x02" + b"\x04\x00")
    c.add("server_limits", b"\x02" + b"\x03" + u16(16) +
          feed(ws_frame(2, b"y" * 300, True)) +
          b"\x05\x01" + b"\x01" + lp(b"z" * 100) + b"\x00" + b"\x05\x00")
    c.add("server_close", b"\x00" + feed(ws_frame(8, u16(1000) + b"bye",
                                                  True)))
    resp = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: $ACCEPT\r\n\r\n")
    c.add("client_open", b"\x03" + b"\x01" + lp(b"queued") + b"\x01" +
          b"\x00" +
          feed(resp + ws_frame(1, b"hi", False)) + b"\x00" +
          feed(ws_frame(2, b"\x00" * 130, False)))
    c.add("client_refused", b"\x01" + b"\x00" +
          feed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
    c.add("client_keepalive", b"\x01" + b"\x00" + feed(resp) + b"\x06" +
          b"\x00" + feed(ws_frame(10, b"", False)) + b"\x07")


def gateway():
    c = Corpus("gateway")
    # Op byte: op % 13, slot (op >> 4) % 6 (fuzz_gateway.c).
    OPEN, TEXT, BIN, RAW, PEER_CLOSE, CLOSE, START, TERMINATE, \
        DISCONNECT, PENDING, TOKEN, TIME, SHUTDOWN = range(13)

    def op(k, slot=0):
        return bytes([next(b for b in range(256)
                           if b % 13 == k and (b >> 4) % 6 == slot)])

    # who: 0-2 an instance's certificate, 4 none (a client); where: 0
    # control channel of instance where >> 3, 1-3 data channel of session
    # where - 1 (sessions 0 and 1 are instance 0's).
    def open_(slot, who, where):
        return op(OPEN) + bytes([who, where, slot]) + lp(b"")

    def text(slot, kind):
        return op(TEXT, slot) + bytes([kind]) + lp(b"")

    # types: 0 input, 1 output, 2 ack, 6 session state, 12 task complete;
    # kind & 3: 0 the bytes, 1 SessionState, 2 task complete, 3 empty.
    def msg(slot, mtype, ptype, payload=b"", kind=0, seq=0, flags=0):
        return op(BIN, slot) + bytes([mtype, flags, ptype, kind]) + \
            u16(seq) + lp(payload)

    relay = (open_(0, 0, 0) + text(0, 0) + op(START) + b"\x00\x00\x00" +
             open_(1, 0, 1) + text(1, 1) + open_(2, 4, 1) + text(2, 1) +
             msg(2, 0, 1, b"ls\r") + msg(1, 1, 1, b"file\r\n", seq=0) +
             msg(2, 2, 0, ack(0)) + msg(1, 1, 1, b"$ ", seq=1))
    end_by_agent = (msg(1, 6, 0, kind=1) + msg(0, 12, 0, kind=2) +
                    op(PEER_CLOSE, 1) + op(PEER_CLOSE, 2) +
                    op(PEER_CLOSE, 0))
    c.add("relay_agent_ends", relay + end_by_agent)
    c.add("relay_client_leaves", relay + op(PEER_CLOSE, 2) +
          op(CLOSE, 1) + b"\x00" + op(PEER_CLOSE, 0))
    c.add("relay_control_first", relay + op(PEER_CLOSE, 0) +
          op(PEER_CLOSE, 1) + op(PEER_CLOSE, 2))
    c.add("relay_terminate", relay + op(TERMINATE) + b"\x00" +
          op(CLOSE, 2) + b"\x00")
    c.add("relay_task_failed", relay + msg(0, 12, 0, kind=0x22) +
          op(PEER_CLOSE, 2))
    c.add("relay_deregistered", relay + op(DISCONNECT) + b"\x00")
    c.add("relay_shutdown", relay + op(SHUTDOWN) + b"\x00")
    c.add("relay_drain", relay + op(SHUTDOWN) + b"\x01")
    c.add("relay_freed_open", relay + op(SHUTDOWN) + b"\x03")
    # The client comes back with ResumeSession's token; the agent's data
    # channel reconnects and replaces the old one.
    c.add("relay_reconnect", relay + op(PEER_CLOSE, 2) + op(TOKEN) +
          b"\x00" + open_(3, 4, 1) + text(3, 1) + msg(3, 0, 1, b"x") +
          open_(4, 0, 1) + text(4, 1) + msg(4, 1, 1, b"y", seq=2))
    # Backpressure: the client's queue is full, then drains.
    c.add("relay_backpressure", relay + op(PENDING, 2) + b"\x01" +
          msg(1, 1, 1, b"z" * 1000, seq=2) + op(PENDING, 2) + b"\x00" +
          msg(1, 1, 1, b"w", seq=3))
    # Frames queued for a side that is not there yet.
    c.add("queued_for_client", open_(0, 0, 0) + text(0, 0) +
          open_(1, 0, 1) + text(1, 1) + msg(1, 1, 1, b"early") +
          open_(2, 4, 1) + text(2, 1))
    # Time passes: the client does not come back within its grace; the
    # agent never opens its data channel; an idle session (1 minute);
    # a finished relay is freed by the next tick.
    c.add("time_client_grace", relay + op(PEER_CLOSE, 2) + op(TIME) +
          b"\x02" + op(TIME) + b"\x00")
    c.add("time_agent_grace", open_(0, 0, 0) + text(0, 0) + op(START) +
          b"\x00\x00\x00" + op(TIME) + b"\x01")
    c.add("time_idle", open_(0, 0, 0) + text(0, 0) + op(START) +
          b"\x00\x00\x01" + open_(1, 0, 1) + text(1, 1) + open_(2, 4, 1) +
          text(2, 1) + op(TIME) + b"\x02" + op(TIME) + b"\x00")
    c.add("time_reap", relay + op(TERMINATE) + b"\x00" + op(TIME) +
          b"\x00" + open_(3, 4, 1) + text(3, 1) + op(TIME) + b"\x03")
    c.add("refused", open_(0, 2, 0x10) + open_(1, 4, 0) +
          open_(2, 4, 1) + text(2, 2) + open_(3, 1, 1) + text(3, 1) +
          open_(4, 4, 2) + text(4, 3) + open_(5, 4, 5))
    # The relay forwards a wrong digest (it only peeks) but not a cut
    # header; the control channel closes on either.
    c.add("bad_frames", open_(0, 0, 0) + text(0, 0) + open_(1, 0, 1) +
          text(1, 1) + msg(1, 0, 1, b"x", flags=0x10) + open_(2, 4, 1) +
          text(2, 1) + msg(2, 0, 1, b"abc", flags=0x20) + b"\x05" +
          msg(0, 0, 1, b"y", flags=0x10))


def rec_frame(ftype, t_us, data):
    """A raw record frame (src/common/record.h): type, time, length."""
    return ftype + struct.pack(">QI", t_us, len(data)) + data


def record():
    c = Corpus("record")
    head = b"PHREC1\n" + jb({
        "version": 1, "session_id": "alice-0123456789abcdef0",
        "instance_id": "mi-0123456789abcdef0",
        "session_type": "Standard_Stream", "start_ms": CREATED_MS,
        "width": 80, "height": 24, "run_as": "ssm-user"}) + b"\n"
    end = rec_frame(b"m", 9000, jb({"event": "end", "status": "Terminated",
                                   "reason": "client"}))
    c.add("shell", head + rec_frame(b"r", 0, b"80x24") +
          rec_frame(b"i", 1000, b"AAFFHHJJ") +
          rec_frame(b"i", 2000, b"\x7f" * 8) +
          rec_frame(b"o", 2500, b"\x08 \x08" * 8) +
          rec_frame(b"i", 3000, b"whoami\r") +
          rec_frame(b"o", 3500, b"ssm-user\r\n$ ") + end)
    c.add("binary", head + rec_frame(b"o", 10, bytes(range(256))) + end)
    c.add("partial", head + rec_frame(b"o", 10, b"hello")[:9])
    c.add("port", head.replace(b"Standard_Stream", b"Port") +
          rec_frame(b"m", 5, jb({"event": "connect", "host": "localhost",
                                 "port": 22})) + end)
    c.add("frames_only", rec_frame(b"o", 1, b"x") + rec_frame(b"q", 2, b""))


def smux_frame(cmd, sid, data=b"", ver=1):
    return bytes([ver, cmd]) + struct.pack("<HI", len(data), sid) + data


def smux():
    c = Corpus("smux")
    # flags: bit 0 server role. Ops: 0 peer bytes (u16 length, bytes),
    # 1 open, 2 write (stream, u16 length), 3 close (stream), 4 flush,
    # 5 transport refuses, 6 consumer busy, 7 resume (all?, stream),
    # 8 tick (u16 ms), 9 keepalive (u16 interval, u16 timeout), 10 NOP.
    # A stream operand below 128 picks a stream seen so far.
    def peer(b):
        return b"\x00" + u16(len(b)) + b

    opening = smux_frame(0, 3) + smux_frame(2, 3, b"SSH-2.0-x\r\n")
    c.add("server_stream", b"\x01" + peer(opening) + b"\x02\x00" +
          u16(100) + peer(smux_frame(1, 3)) + b"\x03\x00")
    c.add("server_split", b"\x01" + peer(opening[:5]) +
          peer(opening[5:13]) + peer(opening[13:]) + b"\x0a")
    c.add("server_busy", b"\x01" + b"\x06" + peer(opening) +
          peer(smux_frame(2, 3, b"x" * 3000)) +
          peer(smux_frame(2, 3, b"y" * 10)) + b"\x06\x07\x01" +
          peer(smux_frame(2, 3, b"z")))
    c.add("client_open_write", b"\x00" + b"\x01\x01" + b"\x02\x00" +
          u16(5000) + b"\x05" + b"\x02\x01" + u16(3000) + b"\x04" +
          peer(smux_frame(1, 5)) + b"\x03\x01")
    c.add("client_keepalive", b"\x00" + b"\x09" + u16(10) + u16(30) +
          b"\x08" + u16(5) + b"\x08" + u16(11) + peer(smux_frame(3, 0)) +
          b"\x08" + u16(40))
    c.add("garbage", b"\x01" + peer(smux_frame(4, 3, b"\x00" * 8)) +
          peer(smux_frame(2, 9, b"abc")) + peer(smux_frame(0, 4)))
    c.add("huge", b"\x01" + peer(b"\x01\x02\xff\xff\x03\x00\x00\x00"))
    c.add("version2", b"\x00" + peer(smux_frame(3, 0, ver=2)))


def console():
    # fuzz_console: a byte choosing the check, then its text.
    c = Corpus("console")
    c.add("resolve-ok", b"\x00app.js")
    c.add("resolve-up", b"\x00../secret")
    c.add("resolve-link", b"\x00out")
    c.add("cookie", b"\x01a=b; porthole_console=tok; c=d")
    c.add("origin", b"\x02https://127.0.0.1:8443\n127.0.0.1:8443")
    c.add("csrf", b"\x03abc\nabc")
    c.add("limiter", b"\x04user:alice")


def main():
    for gen in (clientmsg, sigv4, kms_policy, escape, client_proto,
                agent_handshake, channel, documents, cmddoc, agent_job, api,
                http, ws, gateway,
                record, smux, console):
        gen()


if __name__ == "__main__":
    main()
