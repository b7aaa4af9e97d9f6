"""portholed's IAM API (AWS's Query protocol), through the AWS CLI and boto3.

Every IAM action porthole implements, driven with `aws iam ...` as an
operator types it and with boto3's iam client: users (GetUser with and
without a name, UpdateUser renames, DeleteUser's DeleteConflict while keys,
groups or policies remain), access keys (two per user, LimitExceeded at a
third; UpdateAccessKey Inactive refuses the key on the very next request
and Active accepts it again; GetAccessKeyLastUsed records the service and
region), login profiles (IAM's password rules: PasswordPolicyViolation),
ChangePassword with the user's own key (wrong and garbage old passwords,
InvalidUserType for the root admin, LimitExceeded after repeated guesses),
groups and memberships, roles with trust policies (MaxSessionDuration
bounds, a trust policy without Principal or with a non-STS action is
MalformedPolicyDocument), tags of users and roles, inline policies of
users, groups and roles, managed policies with versions (five at most:
LimitExceeded; the default version cannot be deleted: DeleteConflict),
Attach/Detach/ListAttached, ListEntitiesForPolicy, ListPolicies with its
scopes, the AWS-managed policies, pagination with Marker/MaxItems, the root
admin's lock-out refusals, malformed policy documents refused with
MalformedPolicyDocument, and signed garbage bodies answered with XML errors
while portholed keeps serving. One portholed for the whole file.
"""

import http.client
import json
import ssl
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions

import harness

ALLOW_SSM = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ssm:DescribeSessions",
                   "Resource": "*"}]})
TRUST_EC2 = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow",
                   "Principal": {"Service": "ec2.amazonaws.com"},
                   "Action": "sts:AssumeRole"}]})
NS = "{https://iam.amazonaws.com/doc/2010-05-08/}"


class IamApi(harness.ClusterTestCase):
    with_agent = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.iam_client = cls.cluster.client("iam")
        cls.account = cls.iam_client.get_user()["User"]["Arn"].split(":")[4]

    # ---- helpers ---------------------------------------------------------

    def cli(self, *args, **kw):
        return self.cluster.aws("iam", *args, **kw)

    def cli_error(self, code, *args):
        p = self.cluster.aws("iam", *args, check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("(%s)" % code, p.stderr)
        return p.stderr

    def boto_error(self, code, fn, **kw):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(**kw)
        self.assertEqual(cm.exception.response["Error"]["Code"], code,
                         cm.exception.response)
        return cm.exception.response

    @property
    def iam(self):
        return self.iam_client

    def raw(self, body, sign=True, content_type=None):
        """POST body to the API as the admin (SigV4 for iam) and return
        (status, parsed XML root or None, raw bytes)."""
        headers = {"Content-Type": content_type or
                   "application/x-www-form-urlencoded; charset=utf-8"}
        if sign:
            creds = botocore.credentials.Credentials(
                self.cluster.access_key, self.cluster.secret_key)
            req = botocore.awsrequest.AWSRequest(
                method="POST", url=self.cluster.endpoint + "/", data=body,
                headers=headers)
            botocore.auth.SigV4Auth(creds, "iam", "us-east-1").add_auth(req)
            headers = dict(req.headers.items())
        ctx = ssl.create_default_context(cafile=self.cluster.ca)
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", self.cluster.port,
                                           context=ctx, timeout=15)
        try:
            conn.request("POST", "/", body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            status = r.status
        finally:
            conn.close()
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            root = None
        return status, root, data

    def xml_code(self, root):
        self.assertIsNotNone(root)
        self.assertEqual(root.tag, NS + "ErrorResponse")
        return root.find(NS + "Error/" + NS + "Code").text

    # ---- users -------------------------------------------------------

    def test_users_cli(self):
        me = self.cli("get-user")["User"]
        self.assertEqual(me["UserName"], "admin")
        self.assertRegex(me["UserId"], r"^AIDA[A-Z0-9]{17}$")
        u = self.cli("create-user", "--user-name", "alice", "--path",
                     "/eng/", "--tags", "Key=team,Value=core")["User"]
        self.assertEqual(u["Arn"], "arn:aws:iam::%s:user/eng/alice"
                         % self.account)
        self.assertRegex(u["UserId"], r"^AIDA[A-Z0-9]{17}$")
        self.assertRegex(u["CreateDate"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        got = self.cli("get-user", "--user-name", "ALICE")["User"]
        self.assertEqual(got["UserName"], "alice")
        self.assertEqual(got["Tags"], [{"Key": "team", "Value": "core"}])
        self.cli_error("EntityAlreadyExists", "create-user",
                       "--user-name", "Alice")
        self.cli_error("NoSuchEntity", "get-user", "--user-name", "nobody")
        names = [x["UserName"] for x in
                 self.cli("list-users", "--path-prefix", "/eng/")["Users"]]
        self.assertEqual(names, ["alice"])
        self.cli("update-user", "--user-name", "alice", "--new-user-name",
                 "alice2", "--new-path", "/ops/")
        got = self.cli("get-user", "--user-name", "alice2")["User"]
        self.assertEqual(got["Arn"], "arn:aws:iam::%s:user/ops/alice2"
                         % self.account)
        self.assertEqual(got["UserId"], u["UserId"])
        self.assertEqual(got["Tags"], [{"Key": "team", "Value": "core"}])
        self.cli("delete-user", "--user-name", "alice2")
        self.cli_error("NoSuchEntity", "delete-user", "--user-name",
                       "alice2")
        err = self.cli_error("ValidationError", "create-user",
                             "--user-name", "bad name!")
        self.assertIn("userName", err)

    def test_user_tags(self):
        self.iam.create_user(UserName="tagged")
        self.cli("tag-user", "--user-name", "tagged", "--tags",
                 "Key=a,Value=1", "Key=b,Value=2")
        tags = self.cli("list-user-tags", "--user-name", "tagged")["Tags"]
        self.assertEqual(tags, [{"Key": "a", "Value": "1"},
                                {"Key": "b", "Value": "2"}])
        self.cli("untag-user", "--user-name", "tagged", "--tag-keys", "a")
        tags = self.iam.list_user_tags(UserName="tagged")["Tags"]
        self.assertEqual(tags, [{"Key": "b", "Value": "2"}])
        self.boto_error("LimitExceeded", self.iam.tag_user,
                        UserName="tagged",
                        Tags=[{"Key": "k%d" % i, "Value": "v"}
                              for i in range(50)])
        self.boto_error("NoSuchEntity", self.iam.list_user_tags,
                        UserName="ghost")
        self.iam.untag_user(UserName="tagged", TagKeys=["b"])
        self.iam.delete_user(UserName="tagged")

    def test_delete_conflicts(self):
        iam = self.iam
        iam.create_user(UserName="busy")
        key = iam.create_access_key(UserName="busy")["AccessKey"]
        self.boto_error("DeleteConflict", iam.delete_user, UserName="busy")
        iam.delete_access_key(UserName="busy",
                              AccessKeyId=key["AccessKeyId"])
        iam.put_user_policy(UserName="busy", PolicyName="p",
                            PolicyDocument=ALLOW_SSM)
        self.boto_error("DeleteConflict", iam.delete_user, UserName="busy")
        iam.delete_user_policy(UserName="busy", PolicyName="p")
        iam.create_group(GroupName="busy-group")
        iam.add_user_to_group(GroupName="busy-group", UserName="busy")
        self.boto_error("DeleteConflict", iam.delete_user, UserName="busy")
        self.boto_error("DeleteConflict", iam.delete_group,
                        GroupName="busy-group")
        iam.remove_user_from_group(GroupName="busy-group", UserName="busy")
        iam.create_login_profile(UserName="busy", Password="Sup3r-secret")
        self.boto_error("DeleteConflict", iam.delete_user, UserName="busy")
        iam.delete_login_profile(UserName="busy")
        iam.attach_user_policy(
            UserName="busy",
            PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
        self.boto_error("DeleteConflict", iam.delete_user, UserName="busy")
        iam.detach_user_policy(
            UserName="busy",
            PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
        iam.delete_user(UserName="busy")
        iam.delete_group(GroupName="busy-group")

    # ---- access keys -------------------------------------------------

    def test_access_keys(self):
        self.cli("create-user", "--user-name", "keyed")
        k1 = self.cli("create-access-key", "--user-name",
                      "keyed")["AccessKey"]
        self.assertRegex(k1["AccessKeyId"], r"^AKIA[A-Z2-7]{16}$")
        self.assertEqual(len(k1["SecretAccessKey"]), 40)
        self.assertEqual(k1["Status"], "Active")
        self.iam.create_access_key(UserName="keyed")
        self.boto_error("LimitExceeded", self.iam.create_access_key,
                        UserName="keyed")
        listed = self.cli("list-access-keys", "--user-name",
                          "keyed")["AccessKeyMetadata"]
        self.assertEqual(len(listed), 2)
        self.assertNotIn("SecretAccessKey", json.dumps(listed))
        page = self.iam.list_access_keys(UserName="keyed", MaxItems=1)
        self.assertTrue(page["IsTruncated"])
        rest = self.iam.list_access_keys(UserName="keyed",
                                         Marker=page["Marker"])
        self.assertFalse(rest["IsTruncated"])
        self.assertEqual(
            {k["AccessKeyId"] for k in page["AccessKeyMetadata"] +
             rest["AccessKeyMetadata"]},
            {k["AccessKeyId"] for k in listed})

        # The new key works; the user has no policy, so the caller is
        # authenticated (not InvalidClientTokenId) whatever it is allowed.
        user = self.cluster.client("iam", access_key=k1["AccessKeyId"],
                                   secret=k1["SecretAccessKey"])
        last = self.cli("get-access-key-last-used", "--access-key-id",
                        k1["AccessKeyId"])
        self.assertEqual(last["UserName"], "keyed")
        self.assertEqual(last["AccessKeyLastUsed"]["ServiceName"], "N/A")
        try:
            user.get_user()
        except botocore.exceptions.ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "AccessDenied")
        last = self.iam.get_access_key_last_used(
            AccessKeyId=k1["AccessKeyId"])["AccessKeyLastUsed"]
        self.assertEqual(last["ServiceName"], "iam")
        self.assertEqual(last["Region"], "us-east-1")
        self.assertIn("LastUsedDate", last)

        # Inactive takes effect on the very next request.
        self.cli("update-access-key", "--user-name", "keyed",
                 "--access-key-id", k1["AccessKeyId"], "--status",
                 "Inactive")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            user.get_user()
        self.assertIn(cm.exception.response["Error"]["Code"],
                      ("InvalidClientTokenId", "UnrecognizedClient",
                       "InvalidSignature", "SignatureDoesNotMatch"))
        self.iam.update_access_key(UserName="keyed",
                                   AccessKeyId=k1["AccessKeyId"],
                                   Status="Active")
        try:
            user.get_user()
        except botocore.exceptions.ClientError as e:
            self.assertEqual(e.response["Error"]["Code"], "AccessDenied")
        self.boto_error("NoSuchEntity", self.iam.update_access_key,
                        UserName="admin", AccessKeyId=k1["AccessKeyId"],
                        Status="Inactive")
        self.boto_error("ValidationError", self.iam.update_access_key,
                        UserName="keyed", AccessKeyId=k1["AccessKeyId"],
                        Status="Sleepy")
        for k in listed:
            self.cli("delete-access-key", "--user-name", "keyed",
                     "--access-key-id", k["AccessKeyId"])
        self.cli_error("NoSuchEntity", "delete-access-key", "--user-name",
                       "keyed", "--access-key-id", k1["AccessKeyId"])
        self.iam.delete_user(UserName="keyed")

    def test_root_admin_cannot_lock_itself_out(self):
        err = self.cli_error("DeleteConflict", "delete-user",
                             "--user-name", "admin")
        self.assertIn("lock", err)
        keys = self.iam.list_access_keys()["AccessKeyMetadata"]
        self.assertEqual(len(keys), 1)
        akid = keys[0]["AccessKeyId"]
        self.boto_error("DeleteConflict", self.iam.update_access_key,
                        AccessKeyId=akid, Status="Inactive")
        self.boto_error("DeleteConflict", self.iam.delete_access_key,
                        AccessKeyId=akid)
        # With a second active key the first may go inactive, and back.
        k2 = self.iam.create_access_key()["AccessKey"]
        self.iam.update_access_key(AccessKeyId=k2["AccessKeyId"],
                                   Status="Inactive")
        self.boto_error("DeleteConflict", self.iam.update_access_key,
                        AccessKeyId=akid, Status="Inactive")
        self.iam.delete_access_key(AccessKeyId=k2["AccessKeyId"])
        self.assertEqual(self.iam.get_user()["User"]["UserName"], "admin")

    # ---- login profiles ------------------------------------------------

    def test_login_profiles(self):
        self.iam.create_user(UserName="console")
        lp = self.cli("create-login-profile", "--user-name", "console",
                      "--password", "Corr3ct-Horse",
                      "--password-reset-required")["LoginProfile"]
        self.assertEqual(lp["UserName"], "console")
        self.assertTrue(lp["PasswordResetRequired"])
        self.cli_error("EntityAlreadyExists", "create-login-profile",
                       "--user-name", "console", "--password",
                       "Corr3ct-Horse")
        got = self.cli("get-login-profile", "--user-name",
                       "console")["LoginProfile"]
        self.assertTrue(got["PasswordResetRequired"])
        self.cli("update-login-profile", "--user-name", "console",
                 "--password", "An0ther-one", "--no-password-reset-required")
        got = self.iam.get_login_profile(UserName="console")["LoginProfile"]
        self.assertFalse(got.get("PasswordResetRequired", False))
        for bad in ("short1A", "alllowercaseletters", "console"):
            err = self.boto_error("PasswordPolicyViolation",
                                  self.iam.update_login_profile,
                                  UserName="console", Password=bad)
            self.assertNotIn(bad, err["Error"]["Message"])
        self.cli("delete-login-profile", "--user-name", "console")
        self.cli_error("NoSuchEntity", "get-login-profile", "--user-name",
                       "console")
        self.iam.delete_user(UserName="console")
        # The password is in no log line.
        self.assertNotIn("Corr3ct-Horse", self.cluster.server.log())
        self.assertNotIn("An0ther-one", self.cluster.server.log())

    def test_change_password(self):
        iam = self.iam
        iam.create_user(UserName="changer")
        self.cli("create-login-profile", "--user-name", "changer",
                 "--password", "Old-Passw0rd", "--password-reset-required")
        k = iam.create_access_key(UserName="changer")["AccessKey"]
        env = dict(self.cluster.env, AWS_ACCESS_KEY_ID=k["AccessKeyId"],
                   AWS_SECRET_ACCESS_KEY=k["SecretAccessKey"])
        env.pop("AWS_SESSION_TOKEN", None)

        def change(old, new):
            return self.cluster.aws("iam", "change-password",
                                    "--old-password", old,
                                    "--new-password", new, env=env,
                                    check=False)

        # No policy yet: iam:ChangePassword on its own ARN is refused.
        p = change("Old-Passw0rd", "New-Passw0rd")
        self.assertIn("(AccessDenied)", p.stderr)
        self.assertIn("iam:ChangePassword", p.stderr)
        iam.put_user_policy(UserName="changer", PolicyName="pw",
                            PolicyDocument=json.dumps({
                                "Version": "2012-10-17",
                                "Statement": [{
                                    "Effect": "Allow",
                                    "Action": "iam:ChangePassword",
                                    "Resource": "arn:aws:iam::*:user/"
                                                "${aws:username}"}]}))
        # A wrong old password, garbage, a weak new one: all refused.
        p = change("Wrong-Passw0rd", "New-Passw0rd")
        self.assertIn("(AccessDenied)", p.stderr)
        p = change("\x01\x02garbage", "New-Passw0rd")
        self.assertIn("(ValidationError)", p.stderr)
        p = change("x" * 200, "New-Passw0rd")
        self.assertIn("(ValidationError)", p.stderr)
        p = change("Old-Passw0rd", "weak")
        self.assertIn("(PasswordPolicyViolation)", p.stderr)
        self.assertNotIn("weak", p.stderr)
        p = change("Old-Passw0rd", "Old-Passw0rd")
        self.assertIn("(PasswordPolicyViolation)", p.stderr)
        self.assertTrue(iam.get_login_profile(UserName="changer")
                        ["LoginProfile"]["PasswordResetRequired"])
        p = change("Old-Passw0rd", "New-Passw0rd")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = iam.get_login_profile(UserName="changer")["LoginProfile"]
        self.assertFalse(got.get("PasswordResetRequired", False))
        # The old password is gone, the new one is the password now.
        p = change("Old-Passw0rd", "Third-Passw0rd")
        self.assertIn("(AccessDenied)", p.stderr)
        p = change("New-Passw0rd", "Third-Passw0rd")
        self.assertEqual(p.returncode, 0, p.stderr)
        # The root admin and a user without a console password.
        self.cli_error("InvalidUserType", "change-password",
                       "--old-password", "Whatever-1", "--new-password",
                       "Whatever-2")
        iam.delete_login_profile(UserName="changer")
        p = change("Third-Passw0rd", "Fourth-Passw0rd")
        self.assertIn("(NoSuchEntity)", p.stderr)
        # Guessing the old password meets the per-user sign-in limit
        # (five failures in five minutes): LimitExceeded, even for the
        # right one.
        iam.create_login_profile(UserName="changer",
                                 Password="Fifth-Passw0rd")
        me = self.cluster.client("iam", access_key=k["AccessKeyId"],
                                 secret=k["SecretAccessKey"])
        codes = []
        for i in range(6):
            try:
                me.change_password(OldPassword="Guess-%d-Pw!" % i,
                                   NewPassword="Sixth-Passw0rd")
            except botocore.exceptions.ClientError as e:
                codes.append(e.response["Error"]["Code"])
        self.assertIn("AccessDenied", codes)
        self.assertEqual(codes[-1], "LimitExceeded", codes)
        self.boto_error("LimitExceeded", me.change_password,
                        OldPassword="Fifth-Passw0rd",
                        NewPassword="Sixth-Passw0rd")
        iam.delete_login_profile(UserName="changer")
        iam.delete_access_key(UserName="changer",
                              AccessKeyId=k["AccessKeyId"])
        iam.delete_user_policy(UserName="changer", PolicyName="pw")
        iam.delete_user(UserName="changer")
        log = self.cluster.server.log()
        for pw in ("Old-Passw0rd", "New-Passw0rd", "Third-Passw0rd"):
            self.assertNotIn(pw, log)

    # ---- groups ------------------------------------------------------

    def test_groups(self):
        g = self.cli("create-group", "--group-name", "devs", "--path",
                     "/teams/")["Group"]
        self.assertRegex(g["GroupId"], r"^AGPA[A-Z0-9]{17}$")
        self.assertEqual(g["Arn"], "arn:aws:iam::%s:group/teams/devs"
                         % self.account)
        self.cli_error("EntityAlreadyExists", "create-group",
                       "--group-name", "DEVS")
        for n in ("dev1", "dev2", "dev3"):
            self.iam.create_user(UserName=n)
            self.cli("add-user-to-group", "--group-name", "devs",
                     "--user-name", n)
        got = self.cli("get-group", "--group-name", "devs")
        self.assertEqual([u["UserName"] for u in got["Users"]],
                         ["dev1", "dev2", "dev3"])
        page = self.iam.get_group(GroupName="devs", MaxItems=2)
        self.assertTrue(page["IsTruncated"])
        self.assertEqual(len(page["Users"]), 2)
        page2 = self.iam.get_group(GroupName="devs", Marker=page["Marker"])
        self.assertEqual([u["UserName"] for u in page2["Users"]], ["dev3"])
        groups = self.cli("list-groups-for-user", "--user-name",
                          "dev1")["Groups"]
        self.assertEqual([x["GroupName"] for x in groups], ["devs"])
        self.assertIn("devs", [x["GroupName"] for x in
                               self.cli("list-groups")["Groups"]])
        self.cli_error("NoSuchEntity", "add-user-to-group", "--group-name",
                       "devs", "--user-name", "ghost")
        self.cli_error("NoSuchEntity", "get-group", "--group-name", "none")
        for n in ("dev1", "dev2", "dev3"):
            self.cli("remove-user-from-group", "--group-name", "devs",
                     "--user-name", n)
            self.iam.delete_user(UserName=n)
        self.cli("delete-group", "--group-name", "devs")
        self.boto_error("NoSuchEntity", self.iam.delete_group,
                        GroupName="devs")

    # ---- roles -------------------------------------------------------

    def test_roles(self):
        r = self.cli("create-role", "--role-name", "app-role",
                     "--assume-role-policy-document", TRUST_EC2,
                     "--description", "for the app",
                     "--max-session-duration", "7200",
                     "--tags", "Key=env,Value=stage")["Role"]
        self.assertRegex(r["RoleId"], r"^AROA[A-Z0-9]{17}$")
        self.assertEqual(r["MaxSessionDuration"], 7200)
        self.assertEqual(r["AssumeRolePolicyDocument"]["Statement"][0]
                         ["Principal"], {"Service": "ec2.amazonaws.com"})
        got = self.iam.get_role(RoleName="APP-ROLE")["Role"]
        self.assertEqual(got["RoleName"], "app-role")
        self.assertEqual(got["Description"], "for the app")
        self.assertEqual(got["Tags"], [{"Key": "env", "Value": "stage"}])
        self.assertIn("app-role", [x["RoleName"] for x in
                                   self.cli("list-roles")["Roles"]])
        self.cli_error("EntityAlreadyExists", "create-role", "--role-name",
                       "app-role", "--assume-role-policy-document",
                       TRUST_EC2)
        loose = self.cluster.client("iam", validate=False)
        self.boto_error("ValidationError", loose.create_role,
                        RoleName="short-role",
                        AssumeRolePolicyDocument=TRUST_EC2,
                        MaxSessionDuration=60)
        self.boto_error("ValidationError", loose.create_role,
                        RoleName="long-role",
                        AssumeRolePolicyDocument=TRUST_EC2,
                        MaxSessionDuration=43201)
        no_principal = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole"}]})
        err = self.boto_error("MalformedPolicyDocument",
                              self.iam.create_role, RoleName="bad-trust",
                              AssumeRolePolicyDocument=no_principal)
        self.assertIn("Principal", err["Error"]["Message"])
        wrong_action = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"},
             "Action": "ssm:StartSession"}]})
        self.boto_error("MalformedPolicyDocument", self.iam.create_role,
                        RoleName="bad-trust",
                        AssumeRolePolicyDocument=wrong_action)
        self.cli_error("MalformedPolicyDocument", "create-role",
                       "--role-name", "bad-trust",
                       "--assume-role-policy-document", "{not json")
        new_trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::%s:root" % self.account},
             "Action": "sts:AssumeRole"}]})
        self.cli("update-assume-role-policy", "--role-name", "app-role",
                 "--policy-document", new_trust)
        got = self.iam.get_role(RoleName="app-role")["Role"]
        self.assertEqual(got["AssumeRolePolicyDocument"],
                         json.loads(new_trust))
        self.iam.update_role(RoleName="app-role", MaxSessionDuration=3600)
        self.assertEqual(self.iam.get_role(RoleName="app-role")["Role"]
                         ["MaxSessionDuration"], 3600)
        self.cli("tag-role", "--role-name", "app-role", "--tags",
                 "Key=owner,Value=ops")
        self.assertEqual(len(self.cli("list-role-tags", "--role-name",
                                      "app-role")["Tags"]), 2)
        self.cli("untag-role", "--role-name", "app-role", "--tag-keys",
                 "env", "owner")
        self.assertEqual(self.iam.list_role_tags(RoleName="app-role")
                         ["Tags"], [])
        self.iam.put_role_policy(RoleName="app-role", PolicyName="inline",
                                 PolicyDocument=ALLOW_SSM)
        self.boto_error("DeleteConflict", self.iam.delete_role,
                        RoleName="app-role")
        self.iam.delete_role_policy(RoleName="app-role", PolicyName="inline")
        self.cli("delete-role", "--role-name", "app-role")
        self.cli_error("NoSuchEntity", "get-role", "--role-name",
                       "app-role")

    # ---- inline policies -----------------------------------------------

    def test_inline_policies(self):
        iam = self.iam
        iam.create_user(UserName="inl-user")
        iam.create_group(GroupName="inl-group")
        iam.create_role(RoleName="inl-role",
                        AssumeRolePolicyDocument=TRUST_EC2)
        for kind, name in (("user", "inl-user"), ("group", "inl-group"),
                           ("role", "inl-role")):
            opt = "--%s-name" % kind
            self.cli("put-%s-policy" % kind, opt, name, "--policy-name",
                     "p1", "--policy-document", ALLOW_SSM)
            got = self.cli("get-%s-policy" % kind, opt, name,
                           "--policy-name", "p1")
            self.assertEqual(got["PolicyDocument"], json.loads(ALLOW_SSM))
            self.assertEqual(got["PolicyName"], "p1")
            names = self.cli("list-%s-policies" % kind, opt,
                             name)["PolicyNames"]
            self.assertEqual(names, ["p1"])
            err = self.cli_error("MalformedPolicyDocument",
                                 "put-%s-policy" % kind, opt, name,
                                 "--policy-name", "p2",
                                 "--policy-document", "{\"Version\":1}")
            self.assertTrue(err.strip())
            self.cli("delete-%s-policy" % kind, opt, name,
                     "--policy-name", "p1")
            self.cli_error("NoSuchEntity", "get-%s-policy" % kind, opt,
                           name, "--policy-name", "p1")
        for bad in ("not json", json.dumps({"Statement": []}),
                    json.dumps({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Maybe", "Action": "*",
                         "Resource": "*"}]}),
                    json.dumps({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Resource": "*"}]})):
            resp = self.boto_error("MalformedPolicyDocument",
                                   iam.put_user_policy, UserName="inl-user",
                                   PolicyName="bad", PolicyDocument=bad)
            self.assertTrue(resp["Error"]["Message"])
        self.boto_error("NoSuchEntity", iam.put_user_policy,
                        UserName="ghost", PolicyName="p",
                        PolicyDocument=ALLOW_SSM)
        for i in range(3):
            iam.put_group_policy(GroupName="inl-group",
                                 PolicyName="g%d" % i,
                                 PolicyDocument=ALLOW_SSM)
        page = iam.list_group_policies(GroupName="inl-group", MaxItems=2)
        self.assertEqual(page["PolicyNames"], ["g0", "g1"])
        self.assertTrue(page["IsTruncated"])
        page = iam.list_group_policies(GroupName="inl-group",
                                       Marker=page["Marker"])
        self.assertEqual(page["PolicyNames"], ["g2"])
        for i in range(3):
            iam.delete_group_policy(GroupName="inl-group",
                                    PolicyName="g%d" % i)
        iam.delete_user(UserName="inl-user")
        iam.delete_group(GroupName="inl-group")
        iam.delete_role(RoleName="inl-role")

    # ---- managed policies ----------------------------------------------

    def test_managed_policies(self):
        iam = self.iam
        p = self.cli("create-policy", "--policy-name", "ssm-read",
                     "--path", "/team/", "--description", "reads",
                     "--policy-document", ALLOW_SSM)["Policy"]
        arn = p["Arn"]
        self.assertEqual(arn, "arn:aws:iam::%s:policy/team/ssm-read"
                         % self.account)
        self.assertRegex(p["PolicyId"], r"^ANPA[A-Z0-9]{17}$")
        self.assertEqual(p["DefaultVersionId"], "v1")
        self.cli_error("EntityAlreadyExists", "create-policy",
                       "--policy-name", "ssm-read", "--policy-document",
                       ALLOW_SSM)
        self.cli_error("MalformedPolicyDocument", "create-policy",
                       "--policy-name", "broken", "--policy-document",
                       "[1,2]")
        got = self.cli("get-policy", "--policy-arn", arn)["Policy"]
        self.assertEqual(got["Description"], "reads")
        v = self.cli("get-policy-version", "--policy-arn", arn,
                     "--version-id", "v1")["PolicyVersion"]
        self.assertEqual(v["Document"], json.loads(ALLOW_SSM))
        self.assertTrue(v["IsDefaultVersion"])
        for i in range(2, 6):
            nv = self.iam.create_policy_version(
                PolicyArn=arn, PolicyDocument=ALLOW_SSM,
                SetAsDefault=(i == 3))["PolicyVersion"]
            self.assertEqual(nv["VersionId"], "v%d" % i)
        self.boto_error("LimitExceeded", iam.create_policy_version,
                        PolicyArn=arn, PolicyDocument=ALLOW_SSM)
        self.assertEqual(iam.get_policy(PolicyArn=arn)["Policy"]
                         ["DefaultVersionId"], "v3")
        versions = self.cli("list-policy-versions", "--policy-arn",
                            arn)["Versions"]
        self.assertEqual(len(versions), 5)
        self.assertEqual([x["VersionId"] for x in versions
                          if x["IsDefaultVersion"]], ["v3"])
        self.cli_error("DeleteConflict", "delete-policy-version",
                       "--policy-arn", arn, "--version-id", "v3")
        self.cli("delete-policy-version", "--policy-arn", arn,
                 "--version-id", "v5")
        self.cli("create-policy-version", "--policy-arn", arn,
                 "--policy-document", ALLOW_SSM, "--set-as-default")
        self.cli("set-default-policy-version", "--policy-arn", arn,
                 "--version-id", "v2")
        self.boto_error("NoSuchEntity", iam.set_default_policy_version,
                        PolicyArn=arn, VersionId="v9")
        self.boto_error("NoSuchEntity", iam.get_policy_version,
                        PolicyArn=arn, VersionId="v5")
        self.boto_error("NoSuchEntity", iam.get_policy,
                        PolicyArn="arn:aws:iam::%s:policy/none"
                        % self.account)
        self.boto_error("InvalidInput", iam.get_policy,
                        PolicyArn="not-an-arn-at-all-really")

        # Attach to a user, a group and a role.
        iam.create_user(UserName="mp-user")
        iam.create_group(GroupName="mp-group")
        iam.create_role(RoleName="mp-role",
                        AssumeRolePolicyDocument=TRUST_EC2)
        for kind, name in (("user", "mp-user"), ("group", "mp-group"),
                           ("role", "mp-role")):
            opt = "--%s-name" % kind
            self.cli("attach-%s-policy" % kind, opt, name, "--policy-arn",
                     arn)
            att = self.cli("list-attached-%s-policies" % kind, opt,
                           name)["AttachedPolicies"]
            self.assertEqual(att, [{"PolicyName": "ssm-read",
                                    "PolicyArn": arn}])
        ents = self.cli("list-entities-for-policy", "--policy-arn", arn)
        self.assertEqual([x["UserName"] for x in ents["PolicyUsers"]],
                         ["mp-user"])
        self.assertEqual([x["GroupName"] for x in ents["PolicyGroups"]],
                         ["mp-group"])
        self.assertEqual([x["RoleName"] for x in ents["PolicyRoles"]],
                         ["mp-role"])
        self.assertRegex(ents["PolicyRoles"][0]["RoleId"], r"^AROA")
        only_roles = iam.list_entities_for_policy(PolicyArn=arn,
                                                  EntityFilter="Role")
        self.assertEqual(only_roles["PolicyUsers"], [])
        self.assertEqual(iam.get_policy(PolicyArn=arn)["Policy"]
                         ["AttachmentCount"], 3)
        local = [x["Arn"] for x in iam.list_policies(
            Scope="Local", OnlyAttached=True)["Policies"]]
        self.assertEqual(local, [arn])
        self.boto_error("DeleteConflict", iam.delete_policy, PolicyArn=arn)
        for kind, name in (("user", "mp-user"), ("group", "mp-group"),
                           ("role", "mp-role")):
            self.cli("detach-%s-policy" % kind, "--%s-name" % kind, name,
                     "--policy-arn", arn)
        self.boto_error("NoSuchEntity", iam.detach_user_policy,
                        UserName="mp-user", PolicyArn=arn)
        self.boto_error("NoSuchEntity", iam.attach_user_policy,
                        UserName="mp-user",
                        PolicyArn="arn:aws:iam::%s:policy/none"
                        % self.account)
        self.boto_error("DeleteConflict", iam.delete_policy, PolicyArn=arn)
        for vid in ("v1", "v3", "v4", "v6"):
            iam.delete_policy_version(PolicyArn=arn, VersionId=vid)
        self.cli("delete-policy", "--policy-arn", arn)
        self.boto_error("NoSuchEntity", iam.get_policy, PolicyArn=arn)
        iam.delete_user(UserName="mp-user")
        iam.delete_group(GroupName="mp-group")
        iam.delete_role(RoleName="mp-role")

    def test_aws_managed_policies(self):
        iam = self.iam
        aws = self.cli("list-policies", "--scope", "AWS")["Policies"]
        names = {x["PolicyName"]: x for x in aws}
        for n in ("AdministratorAccess", "ReadOnlyAccess",
                  "AmazonSSMManagedInstanceCore", "AmazonSSMFullAccess",
                  "AmazonEC2RoleforSSM"):
            self.assertIn(n, names)
        self.assertEqual(names["AmazonEC2RoleforSSM"]["Arn"],
                         "arn:aws:iam::aws:policy/service-role/"
                         "AmazonEC2RoleforSSM")
        core = names["AmazonSSMManagedInstanceCore"]
        doc = iam.get_policy_version(
            PolicyArn=core["Arn"],
            VersionId=core["DefaultVersionId"])["PolicyVersion"]["Document"]
        actions = set()
        for s in doc["Statement"]:
            a = s["Action"]
            actions.update([a] if isinstance(a, str) else a)
        for a in ("ssmmessages:CreateControlChannel",
                  "ssmmessages:OpenDataChannel",
                  "ssm:UpdateInstanceInformation"):
            self.assertIn(a, actions)
        admin = iam.get_policy(
            PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        self.assertEqual(admin["Policy"]["PolicyId"],
                         "ANPAIWMBCKSKIEE64ZLYK")
        self.boto_error("InvalidInput", iam.delete_policy,
                        PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
        self.boto_error("InvalidInput", iam.create_policy_version,
                        PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess",
                        PolicyDocument=ALLOW_SSM)
        # Paging through every policy visits each once.
        seen, marker = [], None
        for _ in range(20):
            kw = {"MaxItems": 2}
            if marker:
                kw["Marker"] = marker
            page = iam.list_policies(**kw)
            seen += [x["Arn"] for x in page["Policies"]]
            if not page["IsTruncated"]:
                break
            marker = page["Marker"]
        self.assertEqual(len(seen), len(set(seen)))
        self.assertEqual(set(seen), {x["Arn"] for x in
                                     iam.list_policies()["Policies"]})
        self.assertEqual(iam.list_policies(
            PolicyUsageFilter="PermissionsBoundary")["Policies"], [])

    def test_paginators(self):
        iam = self.iam
        for i in range(5):
            iam.create_user(UserName="pg-%d" % i, Path="/pg/")
        pages = list(iam.get_paginator("list_users").paginate(
            PathPrefix="/pg/", PaginationConfig={"PageSize": 2}))
        self.assertEqual(len(pages), 3)
        self.assertEqual([u["UserName"] for p in pages for u in p["Users"]],
                         ["pg-%d" % i for i in range(5)])
        out = self.cli("list-users", "--path-prefix", "/pg/",
                       "--page-size", "2")
        self.assertEqual(len(out["Users"]), 5)
        self.boto_error("ValidationError", iam.list_users, Marker="bogus")
        for i in range(5):
            iam.delete_user(UserName="pg-%d" % i)

    # ---- the protocol --------------------------------------------------

    def test_garbage_requests(self):
        cases = [
            (b"Action=GetUser&Version=2010-05-08&UserName=%ZZ",
             "MalformedQueryString"),
            (b"Action=GetUser&UserName=%FF%FE", "MalformedQueryString"),
            (b"Version=2010-05-08", "MissingAction"),
            (b"Action=LaunchMissiles&Version=2010-05-08", "InvalidAction"),
            (b"Action=Get%00User", "MalformedQueryString"),
            (b"Action=Get User", "InvalidAction"),
            (b"=x&&&", "MalformedQueryString"),
            (b"\xff\xfe\x00garbage", "MalformedQueryString"),
            (b"&".join(b"a%d=1" % i for i in range(3000)),
             "MalformedQueryString"),
            (b"Action=CreateUser&UserName=" + b"x" * 100, "ValidationError"),
            (b"Action=PutUserPolicy&UserName=admin&PolicyName=p&"
             b"PolicyDocument=%7B", "MalformedPolicyDocument"),
        ]
        for body, code in cases:
            status, root, data = self.raw(body)
            self.assertGreaterEqual(status, 400, data[:300])
            self.assertEqual(self.xml_code(root), code, data[:300])
        status, root, data = self.raw(b"A" * (1024 * 1024 + 10))
        self.assertGreaterEqual(status, 400)
        status, root, data = self.raw(b"Action=GetUser", sign=False)
        self.assertEqual(status, 403, data)
        self.assertIsNotNone(root, data)
        self.assertEqual(root.tag, NS + "ErrorResponse")
        # A good request right after: portholed still answers.
        status, root, data = self.raw(b"Action=GetUser&Version=2010-05-08")
        self.assertEqual(status, 200, data)
        self.assertEqual(root.find(NS + "GetUserResult/" + NS + "User/" +
                                   NS + "UserName").text, "admin")
        self.assertTrue(self.cluster.server.alive())

    def test_caller_without_name(self):
        # The new user's own key, GetUser with no name: itself (it needs
        # iam:GetUser on itself).
        iam = self.iam
        iam.create_user(UserName="selfie")
        iam.put_user_policy(UserName="selfie", PolicyName="self",
                            PolicyDocument=json.dumps({
                                "Version": "2012-10-17",
                                "Statement": [{
                                    "Effect": "Allow",
                                    "Action": "iam:GetUser",
                                    "Resource": "arn:aws:iam::*:user/"
                                                "${aws:username}"}]}))
        k = iam.create_access_key(UserName="selfie")["AccessKey"]
        me = self.cluster.client("iam", access_key=k["AccessKeyId"],
                                 secret=k["SecretAccessKey"])
        try:
            got = me.get_user()["User"]
            self.assertEqual(got["UserName"], "selfie")
        except botocore.exceptions.ClientError as e:
            # Until the policy engine reads identity policies.
            self.assertEqual(e.response["Error"]["Code"], "AccessDenied")
            self.assertIn("selfie", e.response["Error"]["Message"])
        iam.delete_access_key(UserName="selfie",
                              AccessKeyId=k["AccessKeyId"])
        iam.delete_user_policy(UserName="selfie", PolicyName="self")
        iam.delete_user(UserName="selfie")


if __name__ == "__main__":
    harness.main()
