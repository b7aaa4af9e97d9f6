"""SSM documents and the Session Manager preferences, through the AWS CLI.

Proves that `aws ssm update-document --name SSM-SessionManagerRunShell
--content file://prefs.json --document-version '$LATEST'` changes the
preferences of new sessions (the new version becomes the default, and a
shell started afterwards has run shellProfile.linux), that a document's
life cycle works with the CLI (create-document, update-document with new
versions, get-document of a version, describe-document, list-documents
with filters, list-document-versions, update-document-default-version,
delete-document of a version and of the whole document), that AWS's own
documents cannot be updated or deleted, and that invalid content (bad
preference values, text that is not JSON, documents over 64 KB, a 10 MB
request) is refused with the AWS error and leaves portholed serving.
"""

import json
import os

import botocore.exceptions

import harness
from sessionkit import prefs_document

PREFS = "SSM-SessionManagerRunShell"


class Preferences(harness.ClusterTestCase):

    def write(self, name, doc):
        path = os.path.join(self.cluster.tmp, name)
        with open(path, "w") as f:
            if isinstance(doc, str):
                f.write(doc)
            else:
                json.dump(doc, f, indent=2)
        return "file://" + path

    def cli_error(self, *args):
        p = self.cluster.aws(*args, check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        return p.stderr

    def tearDown(self):
        # Deleting the preferences document brings the defaults back.
        self.cluster.aws("ssm", "delete-document", "--name", PREFS,
                         check=False)

    def test_update_preferences_applies_to_new_sessions(self):
        prefs = self.write("prefs.json", prefs_document(
            idleSessionTimeout="15",
            shellProfile={"linux": "export PORTHOLE_PROFILE_RAN=yes",
                          "windows": ""}))
        out = self.cluster.aws("ssm", "update-document", "--name", PREFS,
                               "--content", prefs, "--document-version",
                               "$LATEST")
        d = out["DocumentDescription"]
        self.assertEqual(d["Name"], PREFS)
        self.assertEqual(d["DocumentVersion"], "2")
        self.assertEqual(d["LatestVersion"], "2")
        # The preferences' new version is the one new sessions use.
        self.assertEqual(d["DefaultVersion"], "2")
        self.assertEqual(d["DocumentType"], "Session")
        self.assertEqual(d["HashType"], "Sha256")

        got = self.cluster.aws("ssm", "get-document", "--name", PREFS)
        inputs = json.loads(got["Content"])["inputs"]
        self.assertEqual(inputs["idleSessionTimeout"], "15")
        self.assertEqual(got["DocumentVersion"], "2")

        s = self.cluster.open_session(self.target)
        self.assertIn("yes", s.run("echo $PORTHOLE_PROFILE_RAN").split())
        self.assertEqual(s.exit(), 0)

        # Back to the defaults: the profile no longer runs.
        self.cluster.aws("ssm", "delete-document", "--name", PREFS)
        d = self.cluster.aws("ssm", "describe-document", "--name",
                             PREFS)["Document"]
        self.assertEqual(d["LatestVersion"], "1")
        s = self.cluster.open_session(self.target)
        self.assertNotIn("yes",
                         s.run("echo x${PORTHOLE_PROFILE_RAN}x").split())
        self.assertIn("xx", s.run("echo x${PORTHOLE_PROFILE_RAN}x"))
        self.assertEqual(s.exit(), 0)

    def test_bad_preferences_are_refused(self):
        err = self.cli_error(
            "ssm", "update-document", "--name", PREFS, "--content",
            self.write("bad.json", prefs_document(idleSessionTimeout="600",
                                                  runAsDefaultUser="a b")),
            "--document-version", "$LATEST")
        self.assertIn("InvalidDocumentContent", err)
        self.assertIn("idleSessionTimeout", err)
        self.assertIn("runAsDefaultUser", err)

        doc = prefs_document()
        doc["inputs"]["cloudWatchStreamingEnabled"] = "true"
        err = self.cli_error("ssm", "update-document", "--name", PREFS,
                             "--content", self.write("bad2.json", doc),
                             "--document-version", "$LATEST")
        self.assertIn("InvalidDocumentContent", err)
        self.assertIn("cloudWatchStreamingEnabled", err)

        err = self.cli_error("ssm", "update-document", "--name", PREFS,
                             "--content",
                             self.write("bad3.json", "{not json"),
                             "--document-version", "$LATEST")
        self.assertIn("InvalidDocumentContent", err)
        self.assertIn("not valid JSON", err)

        big = prefs_document()
        big["description"] = "x" * (70 * 1024)
        err = self.cli_error("ssm", "update-document", "--name", PREFS,
                             "--content", self.write("big.json", big),
                             "--document-version", "$LATEST")
        self.assertIn("MaxDocumentSizeExceeded", err)

        # Nothing changed.
        d = self.cluster.aws("ssm", "describe-document", "--name",
                             PREFS)["Document"]
        self.assertEqual(d["LatestVersion"], "1")

    def test_huge_request_leaves_server_serving(self):
        ssm = self.cluster.ssm(validate=False)
        try:
            ssm.create_document(Name="Huge-Doc", DocumentType="Session",
                                Content="{" + " " * (10 << 20) + "}")
            self.fail("a 10 MB document was accepted")
        except (botocore.exceptions.ClientError,
                botocore.exceptions.ConnectionError,
                botocore.exceptions.HTTPClientError) as e:
            if isinstance(e, botocore.exceptions.ClientError):
                self.assertNotEqual(
                    e.response.get("ResponseMetadata", {})
                    .get("HTTPStatusCode"), 200)
        names = [d["Name"] for d in self.cluster.ssm().list_documents()
                 ["DocumentIdentifiers"]]
        self.assertIn(PREFS, names)
        self.assertNotIn("Huge-Doc", names)


class DocumentLifecycle(harness.ClusterTestCase):
    with_agent = False

    def write(self, name, doc):
        path = os.path.join(self.cluster.tmp, name)
        with open(path, "w") as f:
            json.dump(doc, f)
        return "file://" + path

    def test_cli_life_cycle(self):
        v1 = {"schemaVersion": "1.0", "description": "ops shell",
              "sessionType": "Standard_Stream",
              "inputs": {"idleSessionTimeout": "5"}}
        v2 = dict(v1, description="ops shell v2")
        out = self.cluster.aws(
            "ssm", "create-document", "--name", "Ops-Shell",
            "--document-type", "Session", "--content",
            self.write("v1.json", v1), "--tags", "Key=team,Value=ops")
        d = out["DocumentDescription"]
        self.assertEqual(d["DocumentVersion"], "1")
        # The account's own: its ARN carries the account id.
        self.assertRegex(d["Owner"], r"^[0-9]{12}$")
        self.assertEqual(d["Description"], "ops shell")

        out = self.cluster.aws("ssm", "update-document", "--name",
                               "Ops-Shell", "--content",
                               self.write("v2.json", v2),
                               "--document-version", "$LATEST")
        d = out["DocumentDescription"]
        self.assertEqual(d["DocumentVersion"], "2")
        self.assertEqual(d["DefaultVersion"], "1")

        p = self.cluster.aws("ssm", "update-document", "--name",
                             "Ops-Shell", "--content",
                             self.write("v2b.json", v2),
                             "--document-version", "$LATEST", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("DuplicateDocumentContent", p.stderr)

        vers = self.cluster.aws("ssm", "list-document-versions", "--name",
                                "Ops-Shell")["DocumentVersions"]
        self.assertEqual([v["DocumentVersion"] for v in vers], ["1", "2"])
        self.assertEqual([v["IsDefaultVersion"] for v in vers],
                         [True, False])

        got = self.cluster.aws("ssm", "get-document", "--name", "Ops-Shell")
        self.assertEqual(json.loads(got["Content"]), v1)
        got = self.cluster.aws("ssm", "get-document", "--name", "Ops-Shell",
                               "--document-version", "2")
        self.assertEqual(json.loads(got["Content"]), v2)

        out = self.cluster.aws("ssm", "update-document-default-version",
                               "--name", "Ops-Shell", "--document-version",
                               "2")
        self.assertEqual(out["Description"]["DefaultVersion"], "2")

        ids = self.cluster.aws("ssm", "list-documents", "--filters",
                               "Key=Owner,Values=Self")["DocumentIdentifiers"]
        names = [i["Name"] for i in ids]
        self.assertIn("Ops-Shell", names)
        self.assertNotIn("AWS-StartSSHSession", names)
        ids = self.cluster.aws("ssm", "list-documents", "--filters",
                               "Key=DocumentType,Values=Session",
                               "Key=Owner,Values=Amazon"
                               )["DocumentIdentifiers"]
        self.assertEqual(sorted(i["Name"] for i in ids), [
            "AWS-StartInteractiveCommand", "AWS-StartNonInteractiveCommand",
            "AWS-StartPortForwardingSession",
            "AWS-StartPortForwardingSessionToRemoteHost",
            "AWS-StartSSHSession"])
        ids = self.cluster.aws("ssm", "list-documents", "--filters",
                               "Key=tag:team,Values=ops"
                               )["DocumentIdentifiers"]
        self.assertEqual([i["Name"] for i in ids], ["Ops-Shell"])

        d = self.cluster.aws("ssm", "describe-document", "--name",
                             "Ops-Shell")["Document"]
        self.assertEqual(d["DocumentVersion"], "2")
        self.assertEqual(d["LatestVersion"], "2")
        self.assertEqual(len(d["Hash"]), 64)

        self.cluster.aws("ssm", "delete-document", "--name", "Ops-Shell",
                         "--document-version", "1")
        p = self.cluster.aws("ssm", "delete-document", "--name", "Ops-Shell",
                             "--document-version", "2", check=False)
        self.assertIn("InvalidDocumentOperation", p.stderr)
        self.cluster.aws("ssm", "delete-document", "--name", "Ops-Shell")
        p = self.cluster.aws("ssm", "describe-document", "--name",
                             "Ops-Shell", check=False)
        self.assertIn("InvalidDocument", p.stderr)

    def test_aws_documents_are_protected(self):
        ssm = self.cluster.ssm()
        content = ssm.get_document(Name="AWS-StartSSHSession")["Content"]
        doc = json.loads(content)
        doc["description"] = "changed"
        self.assertClientError("InvalidDocumentOperation",
                               ssm.update_document,
                               Name="AWS-StartSSHSession",
                               Content=json.dumps(doc),
                               DocumentVersion="$LATEST")
        self.assertClientError("InvalidDocumentOperation",
                               ssm.delete_document,
                               Name="AWS-StartSSHSession")
        self.assertClientError("ValidationException", ssm.create_document,
                               Name="AWS-Mine", Content=content,
                               DocumentType="Session")
        self.assertEqual(ssm.get_document(Name="AWS-StartSSHSession")
                         ["Content"], content)

    def test_boto3_errors(self):
        ssm = self.cluster.ssm()
        self.assertClientError("InvalidDocument", ssm.describe_document,
                               Name="No-Such-Doc")
        self.assertClientError("InvalidDocumentVersion", ssm.get_document,
                               Name=PREFS, DocumentVersion="42")
        self.assertClientError("InvalidFilterKey", ssm.list_documents,
                               Filters=[{"Key": "Color",
                                         "Values": ["red"]}])
        self.assertClientError("InvalidDocumentContent",
                               ssm.create_document, Name="Bad-Shell",
                               DocumentType="Session",
                               Content=json.dumps({
                                   "schemaVersion": "1.0",
                                   "sessionType": "Telnet"}))
        self.assertClientError("InvalidDocumentSchemaVersion",
                               ssm.create_document, Name="Bad-Shell",
                               DocumentType="Session",
                               Content=json.dumps({
                                   "schemaVersion": "2.2",
                                   "sessionType": "Standard_Stream"}))
        raw = self.cluster.ssm(validate=False)
        self.assertClientError(("SerializationException",
                                "ValidationException"),
                               raw.create_document, Name="Bad-Shell",
                               Content=12)


if __name__ == "__main__":
    harness.main()
