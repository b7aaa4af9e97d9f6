"""Command documents through the AWS CLI and boto3.

Proves that AWS's Command documents are built in (AWS-RunShellScript,
AWS-RunPowerShellScript, AWS-UpdateSSMAgent: owner Amazon, their
parameters and platforms, listed with DocumentType Command), that
Command documents of schema 1.2, 2.0 and 2.2 are created and updated in
JSON and in YAML (stored as given), that GetDocument converts between the
two formats both ways, that versions and the default version work, that
DescribePlatformTypes follow the steps' plugins and preconditions, and
that garbage content (bad YAML, aliases and YAML bombs, deep nesting,
wrong types, unknown actions, regular expressions that do not compile
or would expand past the bound,
{{ references }} to no parameter) is answered with AWS's error and
portholed keeps serving.
"""

import json
import os

import harness

SHELL_22 = {
    "schemaVersion": "2.2",
    "description": "e2e uptime",
    "parameters": {
        "who": {"type": "String", "default": "world",
                "allowedPattern": "^[a-z]+$"},
        "count": {"type": "Integer", "default": 2},
        "lines": {"type": "StringList", "default": ["a", "b"]},
        "flag": {"type": "Boolean", "default": False},
        "env": {"type": "StringMap", "default": {"A": "1"}},
        "maps": {"type": "MapList", "default": [{"k": "v"}]},
    },
    "mainSteps": [
        {"action": "aws:runShellScript", "name": "linux",
         "precondition": {"StringEquals": ["platformType", "Linux"]},
         "inputs": {"runCommand": ["echo {{ who }} {{ count }}"],
                    "timeoutSeconds": "60"}},
    ],
}

YAML_22 = """---
schemaVersion: '2.2'
description: e2e yaml document
parameters:
  message:
    type: String
    description: what to print
    default: hello
    allowedValues:
      - hello
      - bye
mainSteps:
  - action: aws:runShellScript
    name: sayIt
    inputs:
      runCommand:
        - echo {{ message }}
        - |
          echo multi
          echo line
  - action: aws:runPowerShellScript
    name: sayItOnWindows
    precondition:
      StringEquals: [platformType, Windows]
    inputs:
      runCommand: ["Write-Output '{{ message }}'"]
"""

DOC_12 = {
    "schemaVersion": "1.2",
    "description": "e2e 1.2",
    "parameters": {"commands": {"type": "StringList"}},
    "runtimeConfig": {"aws:runShellScript": {"properties": [
        {"id": "0.aws:runShellScript", "runCommand": "{{ commands }}"}]}},
}

DOC_20 = {
    "schemaVersion": "2.0",
    "description": "e2e 2.0",
    "mainSteps": [{"action": "aws:updateSsmAgent", "name": "update",
                   "inputs": {"agentName": "amazon-ssm-agent",
                              "source": "https://example/manifest.json",
                              "allowDowngrade": "false"}}],
}


def step(action="aws:runShellScript", inputs=None, **extra):
    s = {"action": action, "name": "s",
         "inputs": inputs if inputs is not None else {"runCommand": ["x"]}}
    s.update(extra)
    return json.dumps({"schemaVersion": "2.2", "mainSteps": [s]})


class CommandDocuments(harness.ClusterTestCase):

    with_agent = False

    def write(self, name, text):
        path = os.path.join(self.cluster.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return "file://" + path

    def test_builtins(self):
        out = self.cluster.aws("ssm", "list-documents", "--filters",
                               "Key=DocumentType,Values=Command",
                               "Key=Owner,Values=Amazon")
        ids = {d["Name"]: d for d in out["DocumentIdentifiers"]}
        for name in ("AWS-RunShellScript", "AWS-RunPowerShellScript",
                     "AWS-UpdateSSMAgent"):
            self.assertIn(name, ids)
            self.assertEqual(ids[name]["Owner"], "Amazon")
            self.assertEqual(ids[name]["DocumentType"], "Command")
            self.assertEqual(ids[name]["SchemaVersion"], "1.2")
        self.assertEqual(sorted(ids["AWS-RunShellScript"]["PlatformTypes"]),
                         ["Linux", "MacOS"])
        self.assertEqual(
            sorted(ids["AWS-RunPowerShellScript"]["PlatformTypes"]),
            ["Linux", "Windows"])
        self.assertEqual(sorted(ids["AWS-UpdateSSMAgent"]["PlatformTypes"]),
                         ["Linux", "MacOS", "Windows"])

        ssm = self.cluster.ssm()
        d = ssm.describe_document(Name="AWS-RunShellScript")["Document"]
        params = {p["Name"]: p for p in d["Parameters"]}
        self.assertEqual(params["commands"]["Type"], "StringList")
        self.assertEqual(params["executionTimeout"]["DefaultValue"], "3600")
        self.assertEqual(params["workingDirectory"]["DefaultValue"], "")
        self.assertEqual(d["Owner"], "Amazon")
        doc = json.loads(ssm.get_document(
            Name="AWS-RunShellScript")["Content"])
        pattern = doc["parameters"]["executionTimeout"]["allowedPattern"]
        self.assertIn("172800", pattern)
        props = doc["runtimeConfig"]["aws:runShellScript"]["properties"][0]
        self.assertEqual(props["runCommand"], "{{ commands }}")

        doc = json.loads(ssm.get_document(
            Name="AWS-UpdateSSMAgent")["Content"])
        self.assertEqual(doc["parameters"]["allowDowngrade"]["allowedValues"],
                         ["true", "false"])
        props = doc["runtimeConfig"]["aws:updateSsmAgent"]["properties"][0]
        self.assertEqual(props["agentName"], "amazon-ssm-agent")
        self.assertEqual(props["targetVersion"], "{{ version }}")
        # AWS's own documents are not the account's to change.
        self.assertClientError(("InvalidDocumentOperation",),
                               ssm.update_document,
                               Name="AWS-RunShellScript",
                               Content=json.dumps(SHELL_22),
                               DocumentVersion="$LATEST")

    def test_json_life_cycle(self):
        out = self.cluster.aws("ssm", "create-document", "--name",
                               "E2E-Shell", "--document-type", "Command",
                               "--content", self.write(
                                   "shell.json", json.dumps(SHELL_22)))
        d = out["DocumentDescription"]
        self.assertEqual(d["DocumentType"], "Command")
        self.assertEqual(d["SchemaVersion"], "2.2")
        self.assertEqual(d["PlatformTypes"], ["Linux"])
        types = {p["Name"]: p["Type"] for p in d["Parameters"]}
        self.assertEqual(types["who"], "String")
        self.assertEqual(types["lines"], "StringList")

        v2 = dict(SHELL_22, description="e2e uptime v2")
        out = self.cluster.aws("ssm", "update-document", "--name",
                               "E2E-Shell", "--document-version", "$LATEST",
                               "--content", self.write(
                                   "shell2.json", json.dumps(v2)))
        self.assertEqual(out["DocumentDescription"]["DocumentVersion"], "2")
        self.assertEqual(out["DocumentDescription"]["DefaultVersion"], "1")
        ssm = self.cluster.ssm()
        got = ssm.get_document(Name="E2E-Shell")
        self.assertEqual(json.loads(got["Content"])["description"],
                         "e2e uptime")
        got = ssm.get_document(Name="E2E-Shell", DocumentVersion="$LATEST")
        self.assertEqual(json.loads(got["Content"])["description"],
                         "e2e uptime v2")
        ssm.update_document_default_version(Name="E2E-Shell",
                                            DocumentVersion="2")
        got = ssm.get_document(Name="E2E-Shell")
        self.assertEqual(got["DocumentVersion"], "2")
        vers = ssm.list_document_versions(Name="E2E-Shell")
        self.assertEqual(len(vers["DocumentVersions"]), 2)

        # JSON asked for as YAML, and that YAML stored back.
        got = ssm.get_document(Name="E2E-Shell", DocumentFormat="YAML")
        self.assertEqual(got["DocumentFormat"], "YAML")
        self.assertIn("mainSteps:", got["Content"])
        out = ssm.create_document(Name="E2E-Shell-Yaml-Copy",
                                  DocumentType="Command",
                                  DocumentFormat="YAML",
                                  Content=got["Content"])
        back = ssm.get_document(Name="E2E-Shell-Yaml-Copy",
                                DocumentFormat="JSON")
        self.assertEqual(json.loads(back["Content"]), v2)

        for doc in (DOC_12, DOC_20):
            name = "E2E-Schema-" + doc["schemaVersion"].replace(".", "-")
            d = ssm.create_document(Name=name, DocumentType="Command",
                                    Content=json.dumps(doc))
            self.assertEqual(d["DocumentDescription"]["SchemaVersion"],
                             doc["schemaVersion"])
        d = ssm.describe_document(Name="E2E-Schema-2-0")["Document"]
        self.assertEqual(sorted(d["PlatformTypes"]),
                         ["Linux", "MacOS", "Windows"])

    def test_yaml_life_cycle(self):
        out = self.cluster.aws("ssm", "create-document", "--name",
                               "E2E-Yaml", "--document-format", "YAML",
                               "--content", self.write("doc.yaml", YAML_22))
        d = out["DocumentDescription"]
        self.assertEqual(d["DocumentFormat"], "YAML")
        self.assertEqual(d["SchemaVersion"], "2.2")
        self.assertEqual(sorted(d["PlatformTypes"]),
                         ["Linux", "MacOS", "Windows"])
        ssm = self.cluster.ssm()
        got = ssm.get_document(Name="E2E-Yaml")
        self.assertEqual(got["DocumentFormat"], "YAML")
        self.assertEqual(got["Content"], YAML_22)
        got = ssm.get_document(Name="E2E-Yaml", DocumentFormat="JSON")
        self.assertEqual(got["DocumentFormat"], "JSON")
        doc = json.loads(got["Content"])
        self.assertEqual(doc["parameters"]["message"]["allowedValues"],
                         ["hello", "bye"])
        self.assertEqual(doc["mainSteps"][0]["inputs"]["runCommand"][1],
                         "echo multi\necho line\n")
        self.assertEqual(doc["mainSteps"][1]["precondition"],
                         {"StringEquals": ["platformType", "Windows"]})

        # A YAML update of a YAML document, and one in JSON.
        v2 = YAML_22.replace("e2e yaml document", "e2e yaml v2")
        out = self.cluster.aws("ssm", "update-document", "--name",
                               "E2E-Yaml", "--document-format", "YAML",
                               "--document-version", "$LATEST",
                               "--content", self.write("doc2.yaml", v2))
        self.assertEqual(out["DocumentDescription"]["DocumentVersion"], "2")
        out = ssm.update_document(Name="E2E-Yaml", DocumentVersion="$LATEST",
                                  DocumentFormat="JSON",
                                  Content=json.dumps(SHELL_22))
        self.assertEqual(out["DocumentDescription"]["DocumentVersion"], "3")
        got = ssm.get_document(Name="E2E-Yaml", DocumentVersion="2")
        self.assertEqual(got["Content"], v2)
        got = ssm.get_document(Name="E2E-Yaml", DocumentVersion="3",
                               DocumentFormat="YAML")
        self.assertEqual(got["DocumentFormat"], "YAML")
        out = self.cluster.aws("ssm", "list-documents", "--filters",
                               "Key=Name,Values=E2E-Yaml")
        self.assertEqual(out["DocumentIdentifiers"][0]["DocumentFormat"],
                         "YAML")

    def test_garbage(self):
        ssm = self.cluster.ssm()
        deep = "a:\n" + "".join("%s- \n" % ("  " * i) for i in range(1, 80))
        bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            "%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n" % (
                (chr(98 + i), chr(98 + i)) + (chr(97 + i),) * 9)
            for i in range(8))
        bad = [
            ("YAML", "a: [b\n", "YAML"),
            ("YAML", "a:\n\t- b\n", None),
            ("YAML", "a: &x [1]\nb: *x\n", "alias"),
            ("YAML", bomb, "alias"),
            ("YAML", "a: 1\n---\nb: 2\n", None),
            ("YAML", "a: 1\na: 2\n", None),
            ("YAML", "[" * 500, None),
            ("YAML", deep, None),
            ("JSON", "[" * 5000 + "]" * 5000, None),
            ("JSON", "{\"schemaVersion\": \"2.2\"", "JSON"),
            ("JSON", json.dumps({"schemaVersion": 2.2}), "string"),
            ("JSON", json.dumps({"schemaVersion": "2.2", "mainSteps": {}}),
             "mainSteps"),
            ("JSON", step("aws:runDocument"), "aws:runDocument"),
            ("JSON", step(inputs={"runCommand": [1, 2]}), "runCommand"),
            ("JSON", step(inputs={}), "runCommand"),
            ("JSON", step(inputs={"runCommand": "x", "timeoutSeconds": []}),
             "timeoutSeconds"),
            ("JSON", step(precondition={"StringEquals": ["platformType",
                                                         "Amiga"]}),
             "precondition"),
            ("JSON", json.dumps({
                "schemaVersion": "2.2",
                "parameters": {"p": {"type": "String",
                                     "allowedPattern": "([a-z"}},
                "mainSteps": [{"action": "aws:runShellScript", "name": "s",
                               "inputs": {"runCommand": ["{{ p }}"]}}]}),
             "allowedPattern"),
            ("JSON", json.dumps({
                "schemaVersion": "2.2",
                "parameters": {"p": {
                    "type": "String",
                    "allowedPattern": "(((a{0,255}){0,255}){0,255})"}},
                "mainSteps": [{"action": "aws:runShellScript", "name": "s",
                               "inputs": {"runCommand": ["{{ p }}"]}}]}),
             "allowedPattern"),
            ("JSON", step(inputs={"runCommand": ["echo {{ undefined }}"]}),
             "undefined"),
            ("JSON", json.dumps({
                "schemaVersion": "2.2",
                "parameters": {"p": {"type": "Number"}},
                "mainSteps": [{"action": "aws:runShellScript", "name": "s",
                               "inputs": {"runCommand": ["x"]}}]}),
             "type"),
            ("YAML", "schemaVersion: '2.2'\nmainSteps:\n- action: 5\n",
             "action"),
        ]
        for fmt, content, fragment in bad:
            with self.subTest(content=content[:60]):
                err = self.assertClientError(
                    ("InvalidDocumentContent",
                     "InvalidDocumentSchemaVersion"),
                    ssm.create_document, Name="E2E-Bad",
                    DocumentType="Command", DocumentFormat=fmt,
                    Content=content)
                if fragment is not None:
                    self.assertIn(fragment,
                                  err.response["Error"]["Message"])
        self.assertClientError("InvalidDocumentSchemaVersion",
                               ssm.create_document, Name="E2E-Bad",
                               DocumentType="Command",
                               Content=json.dumps({
                                   "schemaVersion": "3.0",
                                   "mainSteps": [{
                                       "action": "aws:runShellScript",
                                       "name": "s",
                                       "inputs": {"runCommand": ["x"]}}]}))
        self.assertClientError("MaxDocumentSizeExceeded",
                               ssm.create_document, Name="E2E-Bad",
                               DocumentType="Command", DocumentFormat="YAML",
                               Content="a: '%s'\n" % ("x" * 70000))
        # The CLI sees the same error shape.
        p = self.cluster.aws("ssm", "create-document", "--name", "E2E-Bad",
                             "--document-format", "YAML", "--content",
                             "a: &x 1\nb: *x\n", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("InvalidDocumentContent", p.stderr)
        # Still serving.
        ssm.describe_document(Name="AWS-RunShellScript")
        self.assertClientError("InvalidDocument", ssm.describe_document,
                               Name="E2E-Bad")


if __name__ == "__main__":
    harness.main()
