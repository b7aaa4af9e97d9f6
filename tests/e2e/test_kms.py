"""portholed's KMS API, through the AWS CLI and boto3.

Proves that `aws kms ...` and boto3's KMS client work against portholed
with botocore's shapes: CreateKey (description, tags, policy), DescribeKey
(by key id, key ARN, alias name and alias ARN), ListKeys (with paging),
CreateAlias / UpdateAlias / ListAliases / DeleteAlias, Encrypt and Decrypt
(files through fileb:// and `--query Plaintext --output text | base64 -d`;
the ciphertext names its key, so Decrypt needs no KeyId; the
EncryptionContext is bound to the ciphertext), GenerateDataKey
(NumberOfBytes 64, KeySpec AES_256 / AES_128), GenerateDataKeyWithoutPlaintext,
DisableKey / EnableKey (a disabled key refuses with DisabledException),
ScheduleKeyDeletion (pending window 7-30 days honoured, KMSInvalidStateException
while pending) / CancelKeyDeletion (the key comes back Disabled),
GetKeyPolicy / PutKeyPolicy, TagResource / UntagResource / ListResourceTags;
that errors are AWS's: NotFoundException for unknown or malformed key ids and
aliases, InvalidCiphertextException for a wrong context, garbage or a
tampered ciphertext, IncorrectKeyException for the wrong KeyId,
ValidationException for a 5000-byte plaintext and bad parameter
combinations, AlreadyExistsException for a duplicate alias,
MalformedPolicyDocumentException for a policy that is not JSON,
AccessDeniedException for a caller the key policy does not name; that
keys and ciphertexts survive a restart of portholed; and that a managed
instance may Decrypt (and DescribeKey) with its client certificate and no
signature, as the role of its activation, and do nothing else so.
"""

import base64
import datetime
import http.client
import json
import os
import re
import configparser
import ssl
import subprocess
import time
import uuid

import boto3
import botocore.config

import harness
import sessionkit

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def cli_time(v):
    """A timestamp as the AWS CLI prints it (epoch seconds or ISO 8601)."""
    if isinstance(v, (int, float)):
        return datetime.datetime.fromtimestamp(v, datetime.timezone.utc)
    t = datetime.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)


class KmsCli(harness.ClusterTestCase):
    """`aws kms ...` as an operator types it."""

    with_agent = False

    def kms(self, *args, **kw):
        return self.cluster.aws("kms", *args, **kw)

    def kms_error(self, code, *args):
        p = self.cluster.aws("kms", *args, check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("(%s)" % code, p.stderr)
        return p.stderr

    def sh(self, script):
        """A bash pipeline in the cluster's directory and environment."""
        p = subprocess.run(["bash", "-o", "pipefail", "-c", script],
                           capture_output=True, timeout=120,
                           stdin=subprocess.DEVNULL, env=self.cluster.env,
                           cwd=self.cluster.tmp)
        if p.returncode != 0:
            self.fail("%s exited %d: %s" % (script, p.returncode,
                                            p.stderr.decode(errors="replace")))
        return p.stdout

    def new_key(self, description="cli key", *extra):
        return self.kms("create-key", "--description", description,
                        *extra)["KeyMetadata"]

    def test_create_describe_list(self):
        acct = sessionkit.account_id(self.cluster)
        meta = self.new_key("session key", "--tags",
                            "TagKey=team,TagValue=ops")
        kid = meta["KeyId"]
        self.assertRegex(kid, UUID_RE)
        self.assertEqual(meta["Arn"], "arn:aws:kms:%s:%s:key/%s"
                         % (self.cluster.region, acct, kid))
        self.assertEqual(meta["AWSAccountId"], acct)
        self.assertEqual(meta["Description"], "session key")
        self.assertIs(meta["Enabled"], True)
        self.assertEqual(meta["KeyState"], "Enabled")
        self.assertEqual(meta["KeyUsage"], "ENCRYPT_DECRYPT")
        self.assertEqual(meta["KeySpec"], "SYMMETRIC_DEFAULT")
        self.assertEqual(meta["CustomerMasterKeySpec"], "SYMMETRIC_DEFAULT")
        self.assertEqual(meta["Origin"], "AWS_KMS")
        self.assertEqual(meta["KeyManager"], "CUSTOMER")
        self.assertEqual(meta["EncryptionAlgorithms"], ["SYMMETRIC_DEFAULT"])
        self.assertIn("CreationDate", meta)

        for ref in (kid, meta["Arn"]):
            d = self.kms("describe-key", "--key-id", ref)["KeyMetadata"]
            self.assertEqual(d["KeyId"], kid)
            self.assertEqual(d["Arn"], meta["Arn"])
            self.assertEqual(d["KeyState"], "Enabled")

        keys = self.kms("list-keys")["Keys"]
        self.assertIn({"KeyId": kid, "KeyArn": meta["Arn"]}, keys)
        tags = self.kms("list-resource-tags", "--key-id", kid)["Tags"]
        self.assertEqual(tags, [{"TagKey": "team", "TagValue": "ops"}])

    def test_aliases(self):
        acct = sessionkit.account_id(self.cluster)
        k1 = self.new_key("first")
        k2 = self.new_key("second")
        alias = "alias/session-manager-demo-encryption"
        self.kms("create-alias", "--alias-name", alias, "--target-key-id",
                 k1["KeyId"])
        alias_arn = "arn:aws:kms:%s:%s:%s" % (self.cluster.region, acct,
                                              alias)
        for ref in (alias, alias_arn):
            d = self.kms("describe-key", "--key-id", ref)["KeyMetadata"]
            self.assertEqual(d["KeyId"], k1["KeyId"])

        entries = [a for a in self.kms("list-aliases")["Aliases"]
                   if a["AliasName"] == alias]
        self.assertEqual(len(entries), 1, entries)
        self.assertEqual(entries[0]["AliasArn"], alias_arn)
        self.assertEqual(entries[0]["TargetKeyId"], k1["KeyId"])
        mine = self.kms("list-aliases", "--key-id", k1["KeyId"])["Aliases"]
        self.assertEqual([a["AliasName"] for a in mine], [alias])
        self.assertEqual(self.kms("list-aliases", "--key-id",
                                  k2["KeyId"])["Aliases"], [])

        self.kms_error("AlreadyExistsException", "create-alias",
                       "--alias-name", alias, "--target-key-id",
                       k2["KeyId"])

        self.kms("update-alias", "--alias-name", alias, "--target-key-id",
                 k2["KeyId"])
        d = self.kms("describe-key", "--key-id", alias)["KeyMetadata"]
        self.assertEqual(d["KeyId"], k2["KeyId"])

        self.kms("delete-alias", "--alias-name", alias)
        self.kms_error("NotFoundException", "describe-key", "--key-id",
                       alias)
        self.assertNotIn(alias, [a["AliasName"] for a in
                                 self.kms("list-aliases")["Aliases"]])
        # The key itself is untouched.
        d = self.kms("describe-key", "--key-id", k2["KeyId"])["KeyMetadata"]
        self.assertEqual(d["KeyState"], "Enabled")

    def test_encrypt_decrypt_files(self):
        k = self.new_key("files")
        alias = "alias/e2e-files-%s" % uuid.uuid4().hex[:8]
        self.kms("create-alias", "--alias-name", alias, "--target-key-id",
                 k["KeyId"])
        plain = os.urandom(1000) + b"\nhello from porthole\n\0\xff"
        with open(os.path.join(self.cluster.tmp, "plain.bin"), "wb") as f:
            f.write(plain)
        self.sh("aws kms encrypt --key-id %s --plaintext fileb://plain.bin "
                "--encryption-context purpose=e2e,team=ops "
                "--query CiphertextBlob --output text | base64 -d > ct.bin"
                % alias)
        with open(os.path.join(self.cluster.tmp, "ct.bin"), "rb") as f:
            ct = f.read()
        self.assertNotIn(b"hello from porthole", ct)
        self.assertGreater(len(ct), len(plain))
        out = self.sh("aws kms decrypt --ciphertext-blob fileb://ct.bin "
                      "--encryption-context team=ops,purpose=e2e "
                      "--query Plaintext --output text | base64 -d")
        self.assertEqual(out, plain)
        # Decrypt names the key (the ciphertext carries it).
        d = self.kms("decrypt", "--ciphertext-blob", "fileb://" +
                     os.path.join(self.cluster.tmp, "ct.bin"),
                     "--encryption-context", "purpose=e2e,team=ops")
        self.assertEqual(d["KeyId"], k["Arn"])
        self.assertEqual(d["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT")
        # Another context does not decrypt.
        self.kms_error("InvalidCiphertextException", "decrypt",
                       "--ciphertext-blob", "fileb://" +
                       os.path.join(self.cluster.tmp, "ct.bin"),
                       "--encryption-context", "purpose=other,team=ops")
        e = self.kms("encrypt", "--key-id", k["KeyId"], "--plaintext",
                     "fileb://" + os.path.join(self.cluster.tmp,
                                               "plain.bin"))
        self.assertEqual(e["KeyId"], k["Arn"])
        self.assertEqual(e["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT")

    def test_generate_data_key(self):
        k = self.new_key("data keys")
        dk = self.kms("generate-data-key", "--key-id", k["KeyId"],
                      "--number-of-bytes", "64", "--encryption-context",
                      "aws:ssm:SessionId=s-1,aws:ssm:TargetId=mi-1")
        plain = base64.b64decode(dk["Plaintext"])
        self.assertEqual(len(plain), 64)
        self.assertEqual(dk["KeyId"], k["Arn"])
        path = os.path.join(self.cluster.tmp, "dk.bin")
        with open(path, "wb") as f:
            f.write(base64.b64decode(dk["CiphertextBlob"]))
        d = self.kms("decrypt", "--ciphertext-blob", "fileb://" + path,
                     "--encryption-context",
                     "aws:ssm:SessionId=s-1,aws:ssm:TargetId=mi-1")
        self.assertEqual(base64.b64decode(d["Plaintext"]), plain)

        for spec, n in (("AES_256", 32), ("AES_128", 16)):
            dk = self.kms("generate-data-key", "--key-id", k["KeyId"],
                          "--key-spec", spec)
            self.assertEqual(len(base64.b64decode(dk["Plaintext"])), n)

        wp = self.kms("generate-data-key-without-plaintext", "--key-id",
                      k["KeyId"], "--key-spec", "AES_256")
        self.assertNotIn("Plaintext", wp)
        self.assertEqual(wp["KeyId"], k["Arn"])
        with open(path, "wb") as f:
            f.write(base64.b64decode(wp["CiphertextBlob"]))
        d = self.kms("decrypt", "--ciphertext-blob", "fileb://" + path)
        self.assertEqual(len(base64.b64decode(d["Plaintext"])), 32)
        # Two data keys are never the same.
        a = self.kms("generate-data-key", "--key-id", k["KeyId"],
                     "--number-of-bytes", "64")["Plaintext"]
        b = self.kms("generate-data-key", "--key-id", k["KeyId"],
                     "--number-of-bytes", "64")["Plaintext"]
        self.assertNotEqual(a, b)

    def test_disable_enable(self):
        k = self.new_key("toggle")
        self.kms("disable-key", "--key-id", k["KeyId"])
        d = self.kms("describe-key", "--key-id", k["KeyId"])["KeyMetadata"]
        self.assertEqual((d["KeyState"], d["Enabled"]), ("Disabled", False))
        err = self.kms_error("DisabledException", "encrypt", "--key-id",
                             k["KeyId"], "--plaintext", "hello")
        self.assertIn(k["Arn"], err)
        self.kms_error("DisabledException", "generate-data-key",
                       "--key-id", k["KeyId"], "--number-of-bytes", "64")
        self.kms("enable-key", "--key-id", k["KeyId"])
        d = self.kms("describe-key", "--key-id", k["KeyId"])["KeyMetadata"]
        self.assertEqual((d["KeyState"], d["Enabled"]), ("Enabled", True))
        self.kms("encrypt", "--key-id", k["KeyId"], "--plaintext", "hello")

    def test_schedule_and_cancel_deletion(self):
        k = self.new_key("doomed")
        now = datetime.datetime.now(datetime.timezone.utc)
        r = self.kms("schedule-key-deletion", "--key-id", k["KeyId"],
                     "--pending-window-in-days", "7")
        self.assertEqual(r["KeyId"], k["Arn"])
        self.assertEqual(r["KeyState"], "PendingDeletion")
        self.assertEqual(r["PendingWindowInDays"], 7)
        when = cli_time(r["DeletionDate"])
        self.assertLess(abs((when - now).total_seconds() - 7 * 86400),
                        86400 + 600, r["DeletionDate"])
        d = self.kms("describe-key", "--key-id", k["KeyId"])["KeyMetadata"]
        self.assertEqual((d["KeyState"], d["Enabled"]),
                         ("PendingDeletion", False))
        self.assertIn("DeletionDate", d)
        self.kms_error("KMSInvalidStateException", "encrypt", "--key-id",
                       k["KeyId"], "--plaintext", "hello")
        # Still listed while pending.
        self.assertIn(k["KeyId"], [x["KeyId"] for x in
                                   self.kms("list-keys")["Keys"]])

        r = self.kms("cancel-key-deletion", "--key-id", k["KeyId"])
        self.assertEqual(r["KeyId"], k["Arn"])
        d = self.kms("describe-key", "--key-id", k["KeyId"])["KeyMetadata"]
        # As in AWS: a cancelled deletion leaves the key disabled.
        self.assertEqual(d["KeyState"], "Disabled")
        self.assertNotIn("DeletionDate", d)
        self.kms("enable-key", "--key-id", k["KeyId"])
        self.kms("encrypt", "--key-id", k["KeyId"], "--plaintext", "hello")

        # The window is 7 to 30 days.
        for days in ("6", "31"):
            self.kms_error("ValidationException", "schedule-key-deletion",
                           "--key-id", k["KeyId"],
                           "--pending-window-in-days", days)
        d = self.kms("describe-key", "--key-id", k["KeyId"])["KeyMetadata"]
        self.assertEqual(d["KeyState"], "Enabled")
        r = self.kms("schedule-key-deletion", "--key-id", k["KeyId"],
                     "--pending-window-in-days", "30")
        self.assertEqual(r["PendingWindowInDays"], 30)

    def test_key_policy(self):
        k = self.new_key("policy")
        p = self.kms("get-key-policy", "--key-id", k["KeyId"],
                     "--policy-name", "default")
        self.assertEqual(p.get("PolicyName", "default"), "default")
        doc = json.loads(p["Policy"])
        self.assertIsInstance(doc.get("Statement"), list)
        self.assertTrue(doc["Statement"])

        policy = sessionkit.session_key_policy(self.cluster)
        path = os.path.join(self.cluster.tmp, "policy.json")
        with open(path, "w") as f:
            f.write(policy)
        self.kms("put-key-policy", "--key-id", k["KeyId"], "--policy-name",
                 "default", "--policy", "file://" + path)
        got = json.loads(self.kms("get-key-policy", "--key-id", k["KeyId"],
                                  "--policy-name", "default")["Policy"])
        self.assertEqual(got, json.loads(policy))
        # The admin is named by it, so it still works.
        self.kms("encrypt", "--key-id", k["KeyId"], "--plaintext", "hello")

        with open(path, "w") as f:
            f.write('{"Version": "2012-10-17", "Statement": [')
        self.kms_error("MalformedPolicyDocumentException", "put-key-policy",
                       "--key-id", k["KeyId"], "--policy-name", "default",
                       "--policy", "file://" + path)

    def test_tags(self):
        k = self.new_key("tags")
        self.kms("tag-resource", "--key-id", k["KeyId"], "--tags",
                 "TagKey=a,TagValue=1", "TagKey=b,TagValue=2")
        tags = self.kms("list-resource-tags", "--key-id", k["KeyId"])
        self.assertEqual(sorted((t["TagKey"], t["TagValue"])
                                for t in tags["Tags"]),
                         [("a", "1"), ("b", "2")])
        self.assertIs(tags.get("Truncated", False), False)
        # Tagging an existing key replaces its value.
        self.kms("tag-resource", "--key-id", k["KeyId"], "--tags",
                 "TagKey=a,TagValue=3")
        self.kms("untag-resource", "--key-id", k["KeyId"], "--tag-keys", "b")
        tags = self.kms("list-resource-tags", "--key-id", k["KeyId"])["Tags"]
        self.assertEqual(tags, [{"TagKey": "a", "TagValue": "3"}])

    def test_unknown_key(self):
        self.kms_error("NotFoundException", "describe-key", "--key-id",
                       str(uuid.uuid4()))
        self.kms_error("NotFoundException", "encrypt", "--key-id",
                       "alias/does-not-exist", "--plaintext", "x")


class KmsBoto3(harness.ClusterTestCase):
    """The same API through boto3, with the error cases."""

    with_agent = False

    def setUp(self):
        self.kms = self.cluster.client("kms")
        # Without client-side checks, so the server's are what is tested.
        self.raw = self.cluster.client("kms", validate=False)

    def new_key(self, **kw):
        kw.setdefault("Description", "boto3 key")
        return self.kms.create_key(**kw)["KeyMetadata"]

    def test_round_trip_and_context(self):
        k = self.new_key(Tags=[{"TagKey": "env", "TagValue": "e2e"}])
        ctx = {"aws:ssm:SessionId": "admin-0123456789abcdef0",
               "aws:ssm:TargetId": "mi-0123456789abcdef0"}
        ct = self.kms.encrypt(KeyId=k["KeyId"], Plaintext=b"secret data",
                              EncryptionContext=ctx)["CiphertextBlob"]
        d = self.kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx)
        self.assertEqual(d["Plaintext"], b"secret data")
        self.assertEqual(d["KeyId"], k["Arn"])
        # Naming the right key is fine; naming another is not.
        self.kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx,
                         KeyId=k["KeyId"])
        other = self.new_key()
        self.assertClientError("IncorrectKeyException", self.kms.decrypt,
                               CiphertextBlob=ct, EncryptionContext=ctx,
                               KeyId=other["KeyId"])
        # The context is bound to the ciphertext.
        for bad in ({}, {"aws:ssm:SessionId": "admin-0123456789abcdef0"},
                    dict(ctx, **{"aws:ssm:TargetId": "mi-fffffffffffffffff"}),
                    dict(ctx, extra="1")):
            self.assertClientError("InvalidCiphertextException",
                                   self.kms.decrypt, CiphertextBlob=ct,
                                   EncryptionContext=bad)
        # Garbage and tampered ciphertexts.
        flipped = bytearray(ct)
        flipped[len(flipped) // 2] ^= 0x01
        for junk in (os.urandom(200), b"x", ct[:-1], bytes(flipped),
                     ct + b"\0"):
            self.assertClientError("InvalidCiphertextException",
                                   self.kms.decrypt, CiphertextBlob=junk,
                                   EncryptionContext=ctx)

    def test_plaintext_limits(self):
        k = self.new_key()
        ct = self.raw.encrypt(KeyId=k["KeyId"],
                              Plaintext=b"a" * 4096)["CiphertextBlob"]
        self.assertEqual(self.kms.decrypt(CiphertextBlob=ct)["Plaintext"],
                         b"a" * 4096)
        self.assertClientError("ValidationException", self.raw.encrypt,
                               KeyId=k["KeyId"], Plaintext=b"a" * 5000)

    def test_bad_key_ids(self):
        acct = sessionkit.account_id(self.cluster)
        for ref in (str(uuid.uuid4()), "not-a-key-id", "alias/nope",
                    "arn:aws:kms:%s:%s:key/%s" % (self.cluster.region, acct,
                                                  uuid.uuid4()),
                    "arn:aws:kms:%s:%s:alias/nope" % (self.cluster.region,
                                                      acct)):
            self.assertClientError("NotFoundException", self.kms.describe_key,
                                   KeyId=ref)
            self.assertClientError("NotFoundException", self.kms.encrypt,
                                   KeyId=ref, Plaintext=b"x")
            self.assertClientError("NotFoundException",
                                   self.kms.generate_data_key, KeyId=ref,
                                   NumberOfBytes=64)
        self.assertClientError("NotFoundException", self.kms.create_alias,
                               AliasName="alias/orphan",
                               TargetKeyId=str(uuid.uuid4()))
        self.assertClientError("NotFoundException", self.kms.delete_alias,
                               AliasName="alias/never-made")
        self.assertClientError("NotFoundException", self.kms.disable_key,
                               KeyId=str(uuid.uuid4()))

    def test_data_key_parameters(self):
        k = self.new_key()
        r = self.kms.generate_data_key(KeyId=k["KeyId"], NumberOfBytes=64)
        self.assertEqual(len(r["Plaintext"]), 64)
        self.assertEqual(self.kms.decrypt(
            CiphertextBlob=r["CiphertextBlob"])["Plaintext"], r["Plaintext"])
        r = self.kms.generate_data_key(KeyId=k["KeyId"], KeySpec="AES_256")
        self.assertEqual(len(r["Plaintext"]), 32)
        r = self.kms.generate_data_key_without_plaintext(
            KeyId=k["KeyId"], NumberOfBytes=64)
        self.assertNotIn("Plaintext", r)
        self.assertEqual(len(self.kms.decrypt(
            CiphertextBlob=r["CiphertextBlob"])["Plaintext"]), 64)
        for kw in ({}, {"NumberOfBytes": 64, "KeySpec": "AES_256"},
                   {"NumberOfBytes": 0}, {"NumberOfBytes": 1025},
                   {"KeySpec": "AES_512"}):
            self.assertClientError("ValidationException",
                                   self.raw.generate_data_key,
                                   KeyId=k["KeyId"], **kw)

    def test_disabled_and_pending_deletion(self):
        k = self.new_key()
        ct = self.kms.encrypt(KeyId=k["KeyId"],
                              Plaintext=b"before")["CiphertextBlob"]
        self.kms.disable_key(KeyId=k["KeyId"])
        self.assertClientError("DisabledException", self.kms.encrypt,
                               KeyId=k["KeyId"], Plaintext=b"x")
        self.assertClientError("DisabledException", self.kms.decrypt,
                               CiphertextBlob=ct)
        self.assertClientError("DisabledException",
                               self.kms.generate_data_key,
                               KeyId=k["KeyId"], NumberOfBytes=64)
        self.kms.enable_key(KeyId=k["KeyId"])
        self.assertEqual(self.kms.decrypt(CiphertextBlob=ct)["Plaintext"],
                         b"before")

        r = self.kms.schedule_key_deletion(KeyId=k["KeyId"],
                                           PendingWindowInDays=7)
        self.assertEqual(r["KeyState"], "PendingDeletion")
        for fn, kw in ((self.kms.encrypt, {"KeyId": k["KeyId"],
                                           "Plaintext": b"x"}),
                       (self.kms.decrypt, {"CiphertextBlob": ct}),
                       (self.kms.generate_data_key, {"KeyId": k["KeyId"],
                                                     "NumberOfBytes": 64}),
                       (self.kms.enable_key, {"KeyId": k["KeyId"]})):
            self.assertClientError("KMSInvalidStateException", fn, **kw)
        # Scheduling twice is refused; cancelling twice too.
        self.assertClientError("KMSInvalidStateException",
                               self.kms.schedule_key_deletion,
                               KeyId=k["KeyId"], PendingWindowInDays=7)
        self.kms.cancel_key_deletion(KeyId=k["KeyId"])
        self.assertClientError("KMSInvalidStateException",
                               self.kms.cancel_key_deletion,
                               KeyId=k["KeyId"])
        self.assertEqual(self.kms.describe_key(KeyId=k["KeyId"])
                         ["KeyMetadata"]["KeyState"], "Disabled")
        # The default window is 30 days.
        r = self.kms.schedule_key_deletion(KeyId=k["KeyId"])
        self.assertEqual(r["PendingWindowInDays"], 30)

    def test_aliases_and_paging(self):
        keys = [self.new_key(Description="page %d" % i) for i in range(3)]
        names = ["alias/e2e-page-%d-%s" % (i, uuid.uuid4().hex[:6])
                 for i in range(3)]
        for k, n in zip(keys, names):
            self.kms.create_alias(AliasName=n, TargetKeyId=k["Arn"])
        first = self.kms.list_keys(Limit=1)
        self.assertEqual(len(first["Keys"]), 1)
        self.assertTrue(first["Truncated"])
        seen = []
        for page in self.kms.get_paginator("list_keys").paginate(
                PaginationConfig={"PageSize": 2, "MaxItems": 1000}):
            seen += [x["KeyId"] for x in page["Keys"]]
        self.assertEqual(len(seen), len(set(seen)))
        for k in keys:
            self.assertIn(k["KeyId"], seen)
        got = []
        for page in self.kms.get_paginator("list_aliases").paginate(
                PaginationConfig={"PageSize": 1, "MaxItems": 1000}):
            got += [a["AliasName"] for a in page["Aliases"]]
        for n in names:
            self.assertIn(n, got)
        self.assertEqual(len(got), len(set(got)))
        self.assertClientError("AlreadyExistsException",
                               self.kms.create_alias, AliasName=names[0],
                               TargetKeyId=keys[1]["KeyId"])
        for bad in ("no-prefix", "alias/", "alias/has space"):
            self.assertClientError("ValidationException",
                                   self.raw.create_alias, AliasName=bad,
                                   TargetKeyId=keys[0]["KeyId"])

    def test_policy_denies_a_principal_it_does_not_name(self):
        c = self.cluster
        # Only the instances' role may use this key: not even the admin.
        policy = sessionkit.key_policy([
            ("RoleOnly", [sessionkit.role_arn(c)], "kms:*")])
        k = self.kms.create_key(Policy=policy,
                                BypassPolicyLockoutSafetyCheck=True,
                                Description="role only")["KeyMetadata"]
        self.assertClientError("AccessDeniedException", self.kms.encrypt,
                               KeyId=k["KeyId"], Plaintext=b"x")
        self.assertClientError("AccessDeniedException",
                               self.kms.generate_data_key, KeyId=k["KeyId"],
                               NumberOfBytes=64)
        # A key whose policy names the admin works for the admin.
        ok = self.kms.create_key(
            Policy=sessionkit.session_key_policy(c),
            Description="admin and role")["KeyMetadata"]
        self.kms.generate_data_key(KeyId=ok["KeyId"], NumberOfBytes=64)
        self.assertEqual(json.loads(self.kms.get_key_policy(
            KeyId=ok["KeyId"], PolicyName="default")["Policy"]),
            json.loads(sessionkit.session_key_policy(c)))

    def test_tags_boto3(self):
        k = self.new_key(Tags=[{"TagKey": "a", "TagValue": "1"}])
        self.kms.tag_resource(KeyId=k["KeyId"],
                              Tags=[{"TagKey": "b", "TagValue": "2"}])
        tags = self.kms.list_resource_tags(KeyId=k["KeyId"])["Tags"]
        self.assertEqual(sorted((t["TagKey"], t["TagValue"]) for t in tags),
                         [("a", "1"), ("b", "2")])
        self.kms.untag_resource(KeyId=k["KeyId"], TagKeys=["a"])
        self.assertEqual(self.kms.list_resource_tags(KeyId=k["KeyId"])
                         ["Tags"], [{"TagKey": "b", "TagValue": "2"}])
        self.assertClientError("NotFoundException",
                               self.kms.list_resource_tags,
                               KeyId=str(uuid.uuid4()))

    def test_survives_restart(self):
        k = self.new_key(Description="durable")
        self.kms.create_alias(AliasName="alias/e2e-durable",
                              TargetKeyId=k["KeyId"])
        ct = self.kms.encrypt(KeyId="alias/e2e-durable",
                              Plaintext=b"kept",
                              EncryptionContext={"a": "b"})["CiphertextBlob"]
        self.cluster.restart_server()
        kms = self.cluster.client("kms")
        self.assertEqual(kms.decrypt(CiphertextBlob=ct,
                                     EncryptionContext={"a": "b"})
                         ["Plaintext"], b"kept")
        d = kms.describe_key(KeyId="alias/e2e-durable")["KeyMetadata"]
        self.assertEqual(d["KeyId"], k["KeyId"])
        self.assertEqual(d["Description"], "durable")
        # Key material is not stored in plaintext: the database does not
        # contain a data key's plaintext either (it never stores those).
        dk = kms.generate_data_key(KeyId=k["KeyId"], NumberOfBytes=64)
        for root, _dirs, files in os.walk(self.cluster.data_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(dk["Plaintext"], f.read())

    def test_root_key_file_is_private(self):
        # The root key that encrypts key material at rest is readable by
        # portholed alone: every file in the data directory is 0600.
        self.new_key()
        for root, _dirs, files in os.walk(self.cluster.data_dir):
            for name in files:
                p = os.path.join(root, name)
                if re.search(r"\.(pem)$", name) and "key" not in name:
                    continue  # certificates are public
                self.assertEqual(harness.file_mode(p) & 0o077, 0,
                                 "%s is mode %o" % (p, harness.file_mode(p)))


class KmsInstancePrincipal(harness.ClusterTestCase):
    """The agent's Decrypt: no SigV4, the instance's client certificate on
    the TLS connection, the instance acting as its activation's role."""

    with_agent = True

    def setUp(self):
        self.kms = self.cluster.client("kms")

    def post(self, target, body, cert=True, headers=None):
        ctx = ssl.create_default_context(cafile=self.cluster.ca)
        if cert:
            d = self.agent.state_dir
            ctx.load_cert_chain(os.path.join(d, "cert.pem"),
                                os.path.join(d, "key.pem"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.cluster.port,
                                           context=ctx, timeout=10)
        h = {"Content-Type": "application/x-amz-json-1.1",
             "X-Amz-Target": target}
        h.update(headers or {})
        try:
            conn.request("POST", "/", body=json.dumps(body).encode(),
                         headers=h)
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def data_key(self, policy):
        k = self.kms.create_key(Policy=policy, Description="instance",
                                BypassPolicyLockoutSafetyCheck=True)
        ctx = {"aws:ssm:SessionId": "admin-0a1b2c3d4e5f60718",
               "aws:ssm:TargetId": self.target}
        dk = self.kms.generate_data_key(KeyId=k["KeyMetadata"]["KeyId"],
                                        NumberOfBytes=64,
                                        EncryptionContext=ctx)
        return k["KeyMetadata"], dk, ctx

    def test_instance_decrypts_with_its_role(self):
        meta, dk, ctx = self.data_key(
            sessionkit.session_key_policy(self.cluster))
        body = {"CiphertextBlob":
                base64.b64encode(dk["CiphertextBlob"]).decode(),
                "EncryptionContext": ctx}
        status, doc = self.post("TrentService.Decrypt", body)
        self.assertEqual(status, 200, doc)
        self.assertEqual(base64.b64decode(doc["Plaintext"]), dk["Plaintext"])
        self.assertEqual(doc["KeyId"], meta["Arn"])
        self.assertEqual(doc["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT")
        # The wrong context still fails as for anyone.
        status, doc = self.post("TrentService.Decrypt", dict(
            body, EncryptionContext={"aws:ssm:SessionId": "x"}))
        self.assertEqual((status, doc["__type"]),
                         (400, "InvalidCiphertextException"))
        # DescribeKey is allowed too.
        status, doc = self.post("TrentService.DescribeKey",
                                {"KeyId": meta["KeyId"]})
        self.assertEqual(status, 200, doc)
        # The audit line names the instance's role session.
        acct = sessionkit.account_id(self.cluster)
        harness.wait_for(lambda: "assumed-role/%s/%s" % (
            harness.TEST_ROLE, self.target) in self.cluster.server.log(),
            5, what="the audit line")
        self.assertIn("arn:aws:sts::%s:assumed-role/" % acct,
                      self.cluster.server.log())

    def test_policy_without_the_role_denies(self):
        other = "arn:aws:iam::%s:role/someone-else" % \
            sessionkit.account_id(self.cluster)
        _meta, dk, ctx = self.data_key(sessionkit.session_key_policy(
            self.cluster, roles=[], decrypt_roles=[other]))
        status, doc = self.post("TrentService.Decrypt", {
            "CiphertextBlob":
            base64.b64encode(dk["CiphertextBlob"]).decode(),
            "EncryptionContext": ctx})
        self.assertEqual((status, doc["__type"]),
                         (400, "AccessDeniedException"), doc)
        self.assertIn("assumed-role/%s/%s" % (harness.TEST_ROLE,
                                              self.target), doc["message"])
        self.assertIn("kms:Decrypt", doc["message"])

    def test_default_policy_lets_the_instance_decrypt(self):
        # The default policy hands the decision to the account's IAM,
        # which (until IAM policies exist) allows instances Decrypt.
        k = self.kms.create_key(Description="default policy")["KeyMetadata"]
        ct = self.kms.encrypt(KeyId=k["KeyId"], Plaintext=b"x" * 32)
        status, doc = self.post("TrentService.Decrypt", {
            "CiphertextBlob":
            base64.b64encode(ct["CiphertextBlob"]).decode()})
        self.assertEqual(status, 200, doc)
        self.assertEqual(base64.b64decode(doc["Plaintext"]), b"x" * 32)

    def test_nothing_else_without_a_signature(self):
        _meta, dk, ctx = self.data_key(
            sessionkit.session_key_policy(self.cluster))
        body = {"CiphertextBlob":
                base64.b64encode(dk["CiphertextBlob"]).decode(),
                "EncryptionContext": ctx}
        # Other KMS actions and other services: today's 403.
        for target, b in (("TrentService.Encrypt",
                           {"KeyId": "alias/x", "Plaintext": "eA=="}),
                          ("TrentService.GenerateDataKey",
                           {"KeyId": "alias/x", "NumberOfBytes": 64}),
                          ("TrentService.CreateKey", {}),
                          ("AmazonSSM.DescribeInstanceInformation", {})):
            status, doc = self.post(target, b)
            self.assertEqual((status, doc.get("__type")),
                             (403, "MissingAuthenticationTokenException"),
                             target)
        # Decrypt without the client certificate.
        status, doc = self.post("TrentService.Decrypt", body, cert=False)
        self.assertEqual((status, doc.get("__type")),
                         (403, "MissingAuthenticationTokenException"))
        # A bad Authorization header goes to SigV4, not to mTLS.
        status, doc = self.post("TrentService.Decrypt", body, headers={
            "Authorization": "AWS4-HMAC-SHA256 garbage"})
        self.assertEqual(status, 403, doc)
        # Garbage bodies are refused cleanly.
        for junk in ({"CiphertextBlob": "!!"}, {"CiphertextBlob": 5}, {},
                     {"CiphertextBlob": base64.b64encode(
                         os.urandom(300)).decode()}):
            status, doc = self.post("TrentService.Decrypt", junk)
            self.assertEqual(status, 400, (junk, doc))


class KmsRootKey(harness.ClusterTestCase):
    """The root key that wraps key material at rest: the default file,
    the environment variable, a passphrase file, rotation with
    `portholed kms-rotate-root-key`, a wrong key refused at start, and a
    data directory made before KMS existed."""

    with_agent = False

    def portholed(self, *args, env=None, timeout=60):
        return subprocess.run([harness.binary("portholed"), *args],
                              capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL,
                              env=env or self.cluster.env)

    def new_data_dir(self):
        d = os.path.join(self.cluster.tmp, "dd-%s" % uuid.uuid4().hex[:8])
        p = self.cluster.init(data_dir=d)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return d

    def serve(self, data_dir, *extra, env=None):
        """portholed serve on a free port; returns (process, kms client)
        once KMS answers, or (process, None) if it exited."""
        port = harness.free_port()
        proc = harness.Process(
            "portholed-%d" % port,
            [harness.binary("portholed"), "serve", "--data-dir", data_dir,
             "--listen", "127.0.0.1:%d" % port, *extra],
            os.path.join(self.cluster.tmp, "portholed-%d.log" % port),
            env or self.cluster.env)
        self.cluster.processes.append(proc)
        cp = configparser.ConfigParser()
        cp.read(os.path.join(data_dir, "admin.credentials"))
        kms = boto3.session.Session(
            aws_access_key_id=cp["porthole"]["aws_access_key_id"],
            aws_secret_access_key=cp["porthole"]["aws_secret_access_key"],
            region_name=self.cluster.region).client(
                "kms", endpoint_url="https://127.0.0.1:%d" % port,
                verify=os.path.join(data_dir, "ca.pem"),
                config=botocore.config.Config(
                    retries={"max_attempts": 1}, connect_timeout=2,
                    read_timeout=10))
        deadline = time.monotonic() + 20
        for _ in range(400):
            if not proc.alive():
                return proc, None
            try:
                kms.list_keys()
                return proc, kms
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        self.fail("portholed on %d did not answer: %s" % (port, proc.log()))

    def done(self, proc):
        proc.close()
        if proc in self.cluster.processes:
            self.cluster.processes.remove(proc)

    def refused(self, data_dir, *extra, env=None):
        proc, kms = self.serve(data_dir, *extra, env=env)
        self.assertIsNone(kms, "portholed started with the wrong root key")
        proc.popen.wait(timeout=10)
        self.assertNotEqual(proc.popen.returncode, 0)
        self.assertIn("does not match", proc.log())
        self.done(proc)

    def round_trip_setup(self, kms):
        k = kms.create_key(Description="root key test")["KeyMetadata"]
        ct = kms.encrypt(KeyId=k["KeyId"], Plaintext=b"wrapped",
                         EncryptionContext={"r": "k"})["CiphertextBlob"]
        return ct

    def assertDecrypts(self, kms, ct):
        self.assertEqual(kms.decrypt(CiphertextBlob=ct,
                                     EncryptionContext={"r": "k"})
                         ["Plaintext"], b"wrapped")

    def test_rotation_keeps_every_key(self):
        c = self.cluster
        kms = c.client("kms")
        cts = [self.round_trip_setup(kms) for _ in range(3)]
        path = os.path.join(c.data_dir, "kms-root.key")
        with open(path) as f:
            before = f.read()
        # Refused while the old key is wrong: nothing changes.
        p = self.portholed("kms-rotate-root-key", "--data-dir", c.data_dir,
                           env=c.make_env(PORTHOLED_KMS_ROOT_KEY=base64.
                                          b64encode(b"\0" * 32).decode()))
        self.assertNotEqual(p.returncode, 0)
        # Refused while portholed runs (it holds the old key in memory).
        p = self.portholed("kms-rotate-root-key", "--data-dir", c.data_dir)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("in use", p.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), before)
        c.stop_server()
        p = self.portholed("kms-rotate-root-key", "--data-dir", c.data_dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"re-wrapped \d+ KMS key")
        with open(path) as f:
            after = f.read()
        self.assertNotEqual(after, before)
        self.assertEqual(len(base64.b64decode(after.strip())), 32)
        self.assertEqual(harness.file_mode(path) & 0o777, 0o600)
        self.assertFalse(os.path.exists(path + ".new"))
        # The old root key no longer opens the store.
        with open(path, "w") as f:
            f.write(before)
        self.refused(c.data_dir)
        with open(path, "w") as f:
            f.write(after)
        c.start_server()
        kms = c.client("kms")
        for ct in cts:
            self.assertDecrypts(kms, ct)

    def test_environment_root_key(self):
        d = self.new_data_dir()
        key = base64.b64encode(os.urandom(32)).decode()
        env = self.cluster.make_env(PORTHOLED_KMS_ROOT_KEY=key)
        proc, kms = self.serve(d, env=env)
        self.assertIsNotNone(kms, proc.log())
        ct = self.round_trip_setup(kms)
        proc.stop()
        self.assertNotIn(key, proc.log())
        self.done(proc)
        # Without it (the file key) or with another one: refused.
        self.refused(d)
        self.refused(d, env=self.cluster.make_env(
            PORTHOLED_KMS_ROOT_KEY=base64.b64encode(os.urandom(32)).decode()))
        proc, kms = self.serve(d, env=env)
        self.assertIsNotNone(kms, proc.log())
        self.assertDecrypts(kms, ct)
        self.done(proc)

    def test_passphrase_root_key(self):
        d = self.new_data_dir()
        pf = os.path.join(self.cluster.tmp, "pass-%s" % uuid.uuid4().hex)
        with open(pf, "w") as f:
            f.write("a long and secret passphrase\n")
        os.chmod(pf, 0o600)
        proc, kms = self.serve(d, "--kms-root-passphrase-file", pf)
        self.assertIsNotNone(kms, proc.log())
        ct = self.round_trip_setup(kms)
        proc.stop()
        self.assertNotIn("secret passphrase", proc.log())
        self.done(proc)
        wrong = pf + ".wrong"
        with open(wrong, "w") as f:
            f.write("another long passphrase\n")
        self.refused(d, "--kms-root-passphrase-file", wrong)
        proc, kms = self.serve(d, "--kms-root-passphrase-file", pf)
        self.assertIsNotNone(kms, proc.log())
        self.assertDecrypts(kms, ct)
        self.done(proc)
        # Rotating away from the passphrase leaves a root key file.
        p = self.portholed("kms-rotate-root-key", "--data-dir", d,
                           "--kms-root-passphrase-file", pf)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        proc, kms = self.serve(d)
        self.assertIsNotNone(kms, proc.log())
        self.assertDecrypts(kms, ct)
        self.done(proc)

    def test_data_dir_made_before_kms(self):
        d = self.new_data_dir()
        path = os.path.join(d, "kms-root.key")
        self.assertEqual(harness.file_mode(path) & 0o777, 0o600)
        os.unlink(path)
        proc, kms = self.serve(d)
        self.assertIsNotNone(kms, proc.log())
        self.assertEqual(harness.file_mode(path) & 0o777, 0o600)
        self.assertEqual(harness.file_mode(os.path.join(d, "kms.db"))
                         & 0o777, 0o600)
        self.round_trip_setup(kms)
        self.done(proc)


if __name__ == "__main__":
    harness.main()
