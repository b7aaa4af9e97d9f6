#!/usr/bin/env python3
"""The web console's HTTP side (docs/console.md): static files with their
security headers, sign-in with a console password, the session, temporary
credentials that authorise exactly as the user, sign-out revoking them,
rate limiting, CSRF and Origin checks, hostile input, and the ConsoleLogin
audit events. Plain http.client over TLS, as a browser would talk."""
import calendar
import glob
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
import unittest

import boto3
import botocore.config
import botocore.exceptions

from harness import (ClusterTestCase, Process, binary, porthole_bin,
                     wait_for)

CSP = ("default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; "
       "style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
DESCRIBE_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow",
                   "Action": ["ssm:DescribeInstanceInformation",
                              "sts:GetCallerIdentity"],
                   "Resource": "*"}]})


def console_built():
    """The console portholed serves by default: BUILD/console next to
    BUILD/bin (the sanitizer build has none; its run checks the API)."""
    return os.path.exists(os.path.join(porthole_bin(), os.pardir, "console",
                                       "index.html"))


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # name (lower case) -> [values]
        self.body = body

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def json(self):
        return json.loads(self.body.decode())


class ConsoleApiTest(ClusterTestCase):
    with_agent = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.passwords = {}
        for user, policy in (("alice", DESCRIBE_POLICY), ("bob", None),
                             ("carol", None)):
            c.aws("iam", "create-user", "--user-name", user)
            if policy:
                c.aws("iam", "put-user-policy", "--user-name", user,
                      "--policy-name", "describe",
                      "--policy-document", policy)
            pw = "Pw-%s-%s-Zq9!" % (user, os.urandom(6).hex())
            c.aws("iam", "create-login-profile", "--user-name", user,
                  "--password", pw)
            cls.passwords[user] = pw
        cls.ctx = ssl.create_default_context(cafile=c.ca)

    # ---- helpers ---------------------------------------------------------

    def request(self, method, path, body=None, headers=None, source=1):
        """One request from 127.0.0.SOURCE (each test its own address,
        so the per-address sign-in limit of one does not touch another)."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.cluster.port, context=self.ctx, timeout=30,
            source_address=("127.0.0.%d" % source, 0))
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            hdrs = {"Content-Type": "application/json"} if body else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            hs = {}
            for k, v in r.getheaders():
                hs.setdefault(k.lower(), []).append(v)
            return Resp(r.status, hs, data)
        finally:
            conn.close()

    def signin(self, user, password=None, source=1, headers=None):
        return self.request("POST", "/console/api/signin",
                            {"UserName": user,
                             "Password": password or self.passwords[user]},
                            headers=headers, source=source)

    @staticmethod
    def cookie_of(r):
        for v in r.headers.get("set-cookie", []):
            name, _, rest = v.partition("=")
            if name == "porthole_console":
                return rest.split(";")[0]
        raise AssertionError("no porthole_console cookie in %r" % r.headers)

    def signed_in(self, user, source=1):
        r = self.signin(user, source=source)
        self.assertEqual(r.status, 200, r.body)
        return self.cookie_of(r), r.json()["CsrfToken"]

    def credentials(self, cookie, csrf, source=1, headers=None):
        h = {"Cookie": "porthole_console=" + cookie}
        if csrf is not None:
            h["X-Porthole-Csrf"] = csrf
        h.update(headers or {})
        return self.request("POST", "/console/api/credentials", b"{}", h,
                            source=source)

    def ssm_with(self, creds):
        s = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.cluster.region)
        cfg = botocore.config.Config(retries={"max_attempts": 1},
                                     connect_timeout=5, read_timeout=30)
        return (s.client("ssm", endpoint_url=self.cluster.endpoint,
                         verify=self.cluster.ca, config=cfg),
                s.client("sts", endpoint_url=self.cluster.endpoint,
                         verify=self.cluster.ca, config=cfg))

    def assertSecurityHeaders(self, r):
        self.assertEqual(r.header("Content-Security-Policy"), CSP)
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.header("Referrer-Policy"), "no-referrer")
        self.assertEqual(r.header("X-Frame-Options"), "DENY")

    def assertAwsError(self, r, status, type_):
        self.assertEqual(r.status, status, r.body)
        o = r.json()
        self.assertEqual(o.get("__type"), type_, o)
        self.assertIsInstance(o.get("message"), str)
        self.assertSecurityHeaders(r)

    # ---- static files ----------------------------------------------------

    def test_static_files(self):
        if not console_built():
            r = self.request("GET", "/console/")
            self.assertAwsError(r, 404, "NotFound")
            self.skipTest("the console is not built in this build")
        r = self.request("GET", "/console/")
        self.assertEqual(r.status, 200, r.body[:200])
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        self.assertIn(b"app.js", r.body)
        self.assertNotIn(b"<script>", r.body)      # no inline script
        self.assertSecurityHeaders(r)
        etag = r.header("ETag")
        self.assertTrue(etag)
        self.assertEqual(r.header("Cache-Control"), "no-cache")
        r2 = self.request("GET", "/console/index.html",
                          headers={"If-None-Match": etag})
        self.assertEqual(r2.status, 304)
        js = self.request("GET", "/console/app.js")
        self.assertEqual(js.status, 200)
        self.assertTrue(js.header("Content-Type").startswith(
            "text/javascript"))
        css = self.request("GET", "/console/xterm.css")
        self.assertEqual(css.status, 200)
        self.assertTrue(css.header("Content-Type").startswith("text/css"))
        r = self.request("GET", "/console")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "/console/")
        r = self.request("GET", "/console/no-such-file.js")
        self.assertAwsError(r, 404, "NotFound")
        r = self.request("POST", "/console/index.html", b"x")
        self.assertEqual(r.status, 405)

    def test_path_traversal_refused(self):
        for path in ("/console/../server/porthole.db",
                     "/console/..", "/console/%2e%2e/ca.pem",
                     "/console/..%2f..%2fetc%2fpasswd",
                     "/console/a/../../etc/passwd",
                     "/console//etc/passwd", "/console/.hidden",
                     "/console/index.html/", "/console/\\..\\x",
                     "/console/" + "a" * 3000):
            r = self.request("GET", path)
            self.assertIn(r.status, (400, 404), path)
            self.assertNotIn(b"BEGIN", r.body)
            self.assertSecurityHeaders(r)

    # ---- the API ---------------------------------------------------------

    def test_signin_credentials_signout(self):
        src = 2
        r = self.signin("alice", source=src)
        self.assertEqual(r.status, 200, r.body)
        self.assertSecurityHeaders(r)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        body = r.json()
        self.assertEqual(body["UserName"], "alice")
        self.assertTrue(body["Arn"].endswith(":user/alice"), body)
        self.assertEqual(len(body["AccountId"]), 12)
        self.assertTrue(body["Expiration"].endswith("Z"))
        self.assertNotIn("Password", body)
        sc = [v for v in r.headers["set-cookie"]
              if v.startswith("porthole_console=")][0]
        for attr in ("Path=/console/api", "Secure", "HttpOnly",
                     "SameSite=Strict", "Max-Age=3600"):
            self.assertIn(attr, [a.strip() for a in sc.split(";")], sc)
        cookie, csrf = self.cookie_of(r), body["CsrfToken"]
        user = self.cluster.aws("iam", "get-user", "--user-name", "alice")
        self.assertIn("PasswordLastUsed", user["User"])
        # The session carries on for a reloaded page.
        r = self.request("GET", "/console/api/session",
                         headers={"Cookie": "porthole_console=" + cookie},
                         source=src)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["CsrfToken"], csrf)
        self.assertEqual(r.json()["UserName"], "alice")
        # Temporary credentials, 15 minutes.
        r = self.credentials(cookie, csrf, source=src)
        self.assertEqual(r.status, 200, r.body)
        creds = r.json()
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"), creds)
        self.assertEqual(len(creds["SecretAccessKey"]), 40)
        self.assertTrue(creds["SessionToken"])
        exp = iso_epoch(creds["Expiration"])
        self.assertLessEqual(exp - time.time(), 15 * 60 + 5)
        self.assertGreater(exp - time.time(), 14 * 60)
        ssm, sts = self.ssm_with(creds)
        ssm.describe_instance_information()
        who = sts.get_caller_identity()
        self.assertTrue(who["Arn"].endswith(":user/alice"), who)
        # What alice's policies do not allow stays denied.
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            ssm.describe_sessions(State="Active")
        self.assertEqual(cm.exception.response["Error"]["Code"],
                         "AccessDeniedException")
        # Signing out ends the session and the credentials.
        r = self.request("POST", "/console/api/signout", b"{}",
                         {"Cookie": "porthole_console=" + cookie,
                          "X-Porthole-Csrf": csrf}, source=src)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(any("Max-Age=0" in v
                            for v in r.headers["set-cookie"]))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            ssm.describe_instance_information()
        self.assertIn(cm.exception.response["Error"]["Code"],
                      ("UnrecognizedClientException",
                       "InvalidSignatureException"))
        r = self.request("GET", "/console/api/session",
                         headers={"Cookie": "porthole_console=" + cookie},
                         source=src)
        self.assertAwsError(r, 401, "AuthenticationFailed")
        r = self.credentials(cookie, csrf, source=src)
        self.assertAwsError(r, 401, "AuthenticationFailed")

    def test_user_without_policy_is_denied(self):
        cookie, csrf = self.signed_in("bob", source=3)
        r = self.credentials(cookie, csrf, source=3)
        self.assertEqual(r.status, 200, r.body)
        ssm, _ = self.ssm_with(r.json())
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            ssm.describe_instance_information()
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], "AccessDeniedException")
        self.assertIn("user/bob", err["Message"])
        # Deleting the user ends its console session and credentials.
        self.cluster.aws("iam", "delete-login-profile", "--user-name", "bob")
        self.cluster.aws("iam", "delete-user", "--user-name", "bob")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            ssm.describe_instance_information()
        self.assertEqual(cm.exception.response["Error"]["Code"],
                         "UnrecognizedClientException")
        r = self.request("GET", "/console/api/session",
                         headers={"Cookie": "porthole_console=" + cookie},
                         source=3)
        self.assertAwsError(r, 401, "AuthenticationFailed")

    def test_wrong_password(self):
        wrong = self.signin("alice", "not-the-password", source=4)
        self.assertAwsError(wrong, 401, "AuthenticationFailed")
        self.assertNotIn("set-cookie", wrong.headers)
        unknown = self.signin("nobody-here", "whatever", source=4)
        self.assertAwsError(unknown, 401, "AuthenticationFailed")
        # The same answer either way: no user enumeration.
        self.assertEqual(wrong.json(), unknown.json())
        # A user without a console password cannot sign in.
        self.cluster.aws("iam", "create-user", "--user-name", "dave")
        nopw = self.signin("dave", "anything", source=4)
        self.assertAwsError(nopw, 401, "AuthenticationFailed")
        self.assertEqual(nopw.json(), unknown.json())

    def test_rate_limit(self):
        # Per user name: five failures, then even the right password
        # waits for the window.
        for i in range(5):
            r = self.signin("carol", "wrong-%d" % i, source=5 + i)
            self.assertEqual(r.status, 401, r.body)
        r = self.signin("carol", source=11)
        self.assertAwsError(r, 429, "ThrottlingException")
        self.assertGreater(int(r.header("Retry-After")), 0)
        # Per client address: five failures over different names.
        for i in range(5):
            r = self.signin("ghost%d" % i, "x", source=12)
            self.assertEqual(r.status, 401, r.body)
        r = self.signin("alice", source=12)
        self.assertAwsError(r, 429, "ThrottlingException")
        self.assertEqual(self.signin("alice", source=13).status, 200)

    def test_concurrent_signins(self):
        # More password checks at once than the server runs: each one is
        # answered, 200 or 429, and the server keeps serving meanwhile.
        import threading
        results = []

        def one(i):
            results.append(self.signin("alice", source=20 + i).status)

        threads = [threading.Thread(target=one, args=(i,))
                   for i in range(6)]
        for t in threads:
            t.start()
        self.cluster.ssm().describe_instance_information()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 6)
        self.assertTrue(set(results) <= {200, 429}, results)
        self.assertIn(200, results)

    def test_csrf_and_origin(self):
        src = 14
        origin = "https://127.0.0.1:%d" % self.cluster.port
        cookie, csrf = self.signed_in("alice", source=src)
        self.assertAwsError(self.credentials(cookie, None, source=src), 403,
                            "AccessDeniedException")
        self.assertAwsError(self.credentials(cookie, "x" * len(csrf),
                                             source=src),
                            403, "AccessDeniedException")
        self.assertAwsError(self.credentials(cookie, csrf[:-1], source=src),
                            403, "AccessDeniedException")
        r = self.credentials(cookie, csrf, source=src,
                             headers={"Origin": "https://evil.example"})
        self.assertAwsError(r, 403, "AccessDeniedException")
        r = self.credentials(cookie, csrf, source=src,
                             headers={"Origin": "http://127.0.0.1:%d"
                                      % self.cluster.port})
        self.assertAwsError(r, 403, "AccessDeniedException")
        r = self.signin("alice", source=src,
                        headers={"Origin": "https://evil.example"})
        self.assertAwsError(r, 403, "AccessDeniedException")
        r = self.request("POST", "/console/api/signout", b"{}",
                         {"Cookie": "porthole_console=" + cookie},
                         source=src)
        self.assertAwsError(r, 403, "AccessDeniedException")
        r = self.credentials(cookie, csrf, source=src,
                             headers={"Origin": origin})
        self.assertEqual(r.status, 200, r.body)

    def test_garbage(self):
        src = 15
        api = "/console/api/signin"
        for body in (b"not json", b"[]", b"\"x\"", b"{\"UserName\": 1}",
                     b"{\"UserName\": \"a\"}", b"\x00\xff\xfe",
                     b"{\"UserName\": \"a\", \"Password\": \"\"}",
                     json.dumps({"UserName": "a" * 65,
                                 "Password": "p"}).encode(),
                     json.dumps({"UserName": "a",
                                 "Password": "p" * 129}).encode(),
                     b"{\"UserName\":\"a\",\"UserName\":\"b\","
                     b"\"Password\":\"p\"}",
                     b"{\"UserName\":\"a\\u0000b\",\"Password\":\"p\"}"):
            r = self.request("POST", api, body, source=src)
            self.assertIn(r.status, (400,), body)
            o = r.json()
            self.assertIn(o["__type"], ("SerializationException",
                                        "ValidationException"))
        r = self.request("POST", api, b"{" + b" " * 5000 + b"}", source=src)
        self.assertAwsError(r, 413, "RequestEntityTooLargeException")
        r = self.request("GET", api, source=src)
        self.assertEqual(r.status, 405)
        r = self.request("POST", "/console/api/nope", b"{}", source=src)
        self.assertAwsError(r, 404, "UnknownOperationException")
        # A control character is refused by the HTTP layer itself.
        r = self.request("GET", "/console/api/session", source=src,
                         headers={"Cookie": "a=b; porthole_console=\x7f"})
        self.assertIn(r.status, (400, 401))
        for cookie in ("porthole_console=" + "A" * 5000, "porthole_console",
                       "porthole_console=;;;", "porthole_console=",
                       "porthole_console=" + "A" * 43):
            r = self.request("GET", "/console/api/session",
                             headers={"Cookie": cookie}, source=src)
            self.assertAwsError(r, 401, "AuthenticationFailed")
        rnd = os.urandom(2048)
        r = self.request("POST", api, rnd, source=src)
        self.assertEqual(r.status, 400)
        # Still serving.
        self.assertEqual(self.request("GET", "/console/").status,
                         200 if console_built() else 404)
        self.cluster.ssm().describe_instance_information()

    def test_password_reset(self):
        # A login profile with PasswordResetRequired: the session can do
        # nothing but change the password, under ChangePassword's rules.
        c, src = self.cluster, 30
        old, new = "Old-Reset-Pw1!", "New-Reset-Pw2!"
        c.aws("iam", "create-user", "--user-name", "erin")
        c.aws("iam", "create-login-profile", "--user-name", "erin",
              "--password", old, "--password-reset-required")
        r = self.signin("erin", old, source=src)
        self.assertEqual(r.status, 200, r.body)
        self.assertIs(r.json()["PasswordResetRequired"], True)
        cookie, csrf = self.cookie_of(r), r.json()["CsrfToken"]
        self.assertAwsError(self.credentials(cookie, csrf, source=src),
                            403, "PasswordResetRequired")
        api = "/console/api/change-password"
        hdrs = {"Cookie": "porthole_console=" + cookie,
                "X-Porthole-Csrf": csrf}

        def change(body, headers=hdrs, source=src):
            return self.request("POST", api, body, headers, source=source)

        # Without iam:ChangePassword on itself: AWS's words.
        r = change({"OldPassword": old, "NewPassword": new})
        self.assertAwsError(r, 403, "AccessDenied")
        self.assertIn("iam:ChangePassword", r.json()["message"])
        c.aws("iam", "put-user-policy", "--user-name", "erin",
              "--policy-name", "pw", "--policy-document", json.dumps({
                  "Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow",
                                 "Action": "iam:ChangePassword",
                                 "Resource": "arn:aws:iam::*:user/"
                                             "${aws:username}"}]}))
        # No cookie, no CSRF header, garbage bodies.
        self.assertAwsError(change({"OldPassword": old, "NewPassword": new},
                                   headers={}), 401, "AuthenticationFailed")
        self.assertAwsError(change({"OldPassword": old, "NewPassword": new},
                                   headers={"Cookie": hdrs["Cookie"]}),
                            403, "AccessDeniedException")
        for body in (b"not json", b"[]", b"{}", b"\x00\xff",
                     {"OldPassword": old}, {"OldPassword": 1,
                                            "NewPassword": new},
                     {"OldPassword": old, "NewPassword": ""},
                     {"OldPassword": old, "NewPassword": "p" * 129},
                     b'{"OldPassword":"a\\u0000b","NewPassword":"x"}'):
            r = change(body)
            self.assertEqual(r.status, 400, (body, r.body))
            self.assertIn(r.json()["__type"], ("SerializationException",
                                               "ValidationException"))
        r = self.request("GET", api, headers=hdrs, source=src)
        self.assertEqual(r.status, 405)
        # A wrong old password, a weak or unchanged new one.
        self.assertAwsError(change({"OldPassword": "Wrong-Pw-9!",
                                    "NewPassword": new}), 403,
                            "AccessDenied")
        r = change({"OldPassword": old, "NewPassword": "weak"})
        self.assertAwsError(r, 400, "PasswordPolicyViolation")
        self.assertNotIn("weak", r.json()["message"])
        self.assertAwsError(change({"OldPassword": old,
                                    "NewPassword": old}), 400,
                            "PasswordPolicyViolation")
        # The change: the session carries on with full use.
        r = change({"OldPassword": old, "NewPassword": new})
        self.assertEqual(r.status, 200, r.body)
        self.assertIs(r.json()["PasswordResetRequired"], False)
        self.assertEqual(r.json()["UserName"], "erin")
        self.assertEqual(self.credentials(cookie, csrf, source=src).status,
                         200)
        lp = c.aws("iam", "get-login-profile", "--user-name",
                   "erin")["LoginProfile"]
        self.assertFalse(lp.get("PasswordResetRequired", False))
        self.assertAwsError(self.signin("erin", old, source=src + 1), 401,
                            "AuthenticationFailed")
        r = self.signin("erin", new, source=src + 1)
        self.assertEqual(r.status, 200, r.body)
        self.assertIs(r.json()["PasswordResetRequired"], False)
        log = c.server.log()
        for pw in (old, new):
            self.assertNotIn(pw, log)

    def test_zz_audit(self):
        # Runs last: the events of the tests above are in the trail.
        self.assertEqual(self.signin("alice", source=16).status, 200)
        self.assertEqual(self.signin("alice", "bad", source=16).status, 401)
        events, text = [], ""
        for path in sorted(glob.glob(os.path.join(
                self.cluster.data_dir, "audit", "*.jsonl"))):
            with open(path) as f:
                t = f.read()
            text += t
            events += [json.loads(l) for l in t.splitlines() if l.strip()]
        logins = [e for e in events if e.get("eventName") == "ConsoleLogin"]
        ok = [e for e in logins
              if e["responseElements"] == {"ConsoleLogin": "Success"}]
        bad = [e for e in logins
               if e["responseElements"] == {"ConsoleLogin": "Failure"}]
        self.assertTrue(ok and bad, logins[-3:])
        e = ok[-1]
        self.assertEqual(e["eventSource"], "signin.amazonaws.com")
        self.assertEqual(e["eventType"], "AwsConsoleSignIn")
        self.assertEqual(e["userIdentity"]["type"], "IAMUser")
        self.assertEqual(e["userIdentity"]["userName"], "alice")
        self.assertEqual(e["sourceIPAddress"], "127.0.0.16")
        self.assertEqual(bad[-1]["errorMessage"], "Failed authentication")
        self.assertTrue(any(x.get("errorCode") == "ThrottlingException"
                            for x in bad))
        # The credentials the page was given: key id, never the secret.
        gst = [e for e in events if e.get("eventName") == "GetSessionToken"]
        self.assertTrue(gst)
        self.assertTrue(gst[-1]["responseElements"]["credentials"][
            "accessKeyId"].startswith("ASIA"))
        self.assertEqual(gst[-1]["userIdentity"]["type"], "IAMUser")
        for pw in self.passwords.values():
            self.assertNotIn(pw, text)
        with open(self.cluster.server_log) as f:
            log = f.read()
        for pw in self.passwords.values():
            self.assertNotIn(pw, log)

    def test_zzz_session_seconds(self):
        # Runs last: restarts portholed with a 10-minute console session.
        c = self.cluster
        cookie, csrf = self.signed_in("alice", source=30)
        for bad in ("5", "0", "x", "99999999", ""):
            p = subprocess.run([binary("portholed"), "serve", "--data-dir",
                                c.data_dir, "--console-session-seconds",
                                bad], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, 2, (bad, p.stderr))
        c.stop_server()
        c.server = Process("portholed",
                           [binary("portholed"), "serve", "--data-dir",
                            c.data_dir, "--listen", "127.0.0.1:%d" % c.port,
                            "--console-session-seconds", "600"],
                           c.server_log, c.env)
        c.processes.append(c.server)
        wait_for(lambda: self.request("GET", "/console/").status in
                 (200, 404), 30, what="portholed serving again")
        # A session survives the restart (it is in the store).
        r = self.request("GET", "/console/api/session",
                         headers={"Cookie": "porthole_console=" + cookie},
                         source=30)
        self.assertEqual(r.status, 200, r.body)
        r = self.signin("alice", source=31)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(any("Max-Age=600" in v
                            for v in r.headers["set-cookie"]))
        sess = r.json()
        left = iso_epoch(sess["Expiration"]) - time.time()
        self.assertTrue(590 <= left <= 605, left)
        r = self.credentials(self.cookie_of(r), sess["CsrfToken"],
                             source=31)
        self.assertEqual(r.status, 200, r.body)
        # Credentials never outlive the console session.
        self.assertLessEqual(iso_epoch(r.json()["Expiration"]),
                             iso_epoch(sess["Expiration"]))
        self.assertGreater(iso_epoch(r.json()["Expiration"]) - time.time(),
                           590)


def iso_epoch(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
