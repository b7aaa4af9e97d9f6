"""Every SSM action of the first slice, called through boto3.

Proves that portholed speaks AWS JSON 1.1 with botocore's request and
response shapes for CreateActivation, DescribeActivations (with filters),
DeleteActivation, DescribeInstanceInformation (PingStatus, AgentVersion,
PlatformType, ComputerName, IPAddress, ResourceType; InstanceIds and
PingStatus filters), Add/List/RemoveTags (ManagedInstance), StartSession,
TerminateSession, ResumeSession, DescribeSessions (Active and History, with
filters), GetConnectionStatus and DeregisterManagedInstance (after which the
instance is gone and its agent's certificate no longer opens a control
channel), and that invalid requests fail with the AWS error codes botocore
raises as ClientError.
"""

import datetime
import ipaddress
import os
import socket
import time

import harness


class Activations(harness.ClusterTestCase):
    with_agent = False

    def test_create_describe_delete(self):
        ssm = self.cluster.ssm()
        self.cluster.ensure_role("porthole-test-role")
        self.cluster.ensure_role("other-role")
        r = ssm.create_activation(IamRole="porthole-test-role",
                                  RegistrationLimit=3,
                                  DefaultInstanceName="web",
                                  Description="e2e activation")
        aid, code = r["ActivationId"], r["ActivationCode"]
        self.assertTrue(aid and code)
        self.assertNotEqual(aid, code)

        lst = ssm.describe_activations(Filters=[
            {"FilterKey": "ActivationIds", "FilterValues": [aid]}
        ])["ActivationList"]
        self.assertEqual(len(lst), 1)
        a = lst[0]
        self.assertEqual(a["ActivationId"], aid)
        self.assertEqual(a["IamRole"], "porthole-test-role")
        self.assertEqual(a["RegistrationLimit"], 3)
        self.assertEqual(a["RegistrationsCount"], 0)
        self.assertEqual(a["DefaultInstanceName"], "web")
        self.assertEqual(a["Description"], "e2e activation")
        self.assertFalse(a["Expired"])
        self.assertIsInstance(a["CreatedDate"], datetime.datetime)
        self.assertIsInstance(a["ExpirationDate"], datetime.datetime)
        self.assertGreater(a["ExpirationDate"], a["CreatedDate"])
        # The code is a secret: never listed.
        self.assertNotIn(code, repr(lst))

        # A second activation, and filters that pick one or the other.
        aid2 = ssm.create_activation(IamRole="other-role",
                                     DefaultInstanceName="db")["ActivationId"]
        by_role = ssm.describe_activations(Filters=[
            {"FilterKey": "IamRole", "FilterValues": ["other-role"]}
        ])["ActivationList"]
        self.assertEqual([x["ActivationId"] for x in by_role], [aid2])
        by_name = ssm.describe_activations(Filters=[
            {"FilterKey": "DefaultInstanceName", "FilterValues": ["web"]}
        ])["ActivationList"]
        self.assertEqual([x["ActivationId"] for x in by_name], [aid])
        every = [x["ActivationId"] for x in
                 ssm.describe_activations()["ActivationList"]]
        self.assertIn(aid, every)
        self.assertIn(aid2, every)

        ssm.delete_activation(ActivationId=aid)
        lst = ssm.describe_activations(Filters=[
            {"FilterKey": "ActivationIds", "FilterValues": [aid]}
        ])["ActivationList"]
        self.assertEqual(lst, [])
        self.assertClientError(("InvalidActivation", "InvalidActivationId"),
                               ssm.delete_activation, ActivationId=aid)

    def test_pagination(self):
        ssm = self.cluster.ssm()
        self.cluster.ensure_role("page-role")
        ids = {ssm.create_activation(IamRole="page-role",
                                     DefaultInstanceName="p%d" % i)
               ["ActivationId"] for i in range(3)}
        seen, token = [], None
        for _ in range(10):
            kw = {"Filters": [{"FilterKey": "IamRole",
                               "FilterValues": ["page-role"]}],
                  "MaxResults": 2}
            if token:
                kw["NextToken"] = token
            r = ssm.describe_activations(**kw)
            self.assertLessEqual(len(r["ActivationList"]), 2)
            seen += [x["ActivationId"] for x in r["ActivationList"]]
            token = r.get("NextToken")
            if not token:
                break
        self.assertEqual(sorted(seen), sorted(ids))

    def test_validation_errors(self):
        ssm = self.cluster.ssm()
        self.assertClientError(("ValidationException", "InvalidParameters"),
                               ssm.create_activation, IamRole="r",
                               RegistrationLimit=1001)
        raw = self.cluster.ssm(validate=False)
        self.assertClientError(("ValidationException", "InvalidParameters"),
                               raw.create_activation, IamRole="r",
                               RegistrationLimit=0)
        # IamRole is required.
        self.assertClientError("ValidationException",
                               raw.create_activation, RegistrationLimit=1)
        self.assertClientError(("ValidationException", "InvalidParameters"),
                               raw.create_activation, IamRole="r",
                               ExpirationDate=datetime.datetime(2001, 1, 1))
        self.assertClientError(("InvalidFilter", "ValidationException"),
                               raw.describe_activations, Filters=[
                                   {"FilterKey": "Bogus",
                                    "FilterValues": ["x"]}])
        self.assertClientError("ValidationException", raw.start_session)
        self.assertClientError("ValidationException",
                               raw.delete_activation)
        self.assertClientError(("InvalidNextToken", "ValidationException"),
                               ssm.describe_activations,
                               NextToken="not-a-token")


class Instances(harness.ClusterTestCase):
    """One agent Online for the class (registered with --name e2e-main)."""

    def test_describe_instance_information(self):
        ssm = self.cluster.ssm()
        info = self.cluster.instance_info(self.target)
        self.assertIsNotNone(info)
        self.assertEqual(info["InstanceId"], self.target)
        self.assertEqual(info["PingStatus"], "Online")
        self.assertEqual(info["ResourceType"], "ManagedInstance")
        self.assertEqual(info["PlatformType"], "Linux")
        self.assertTrue(info.get("PlatformName"))
        self.assertTrue(info.get("AgentVersion"))
        self.assertRegex(info["AgentVersion"], r"^\d+(\.\d+)+$")
        self.assertTrue(info.get("ComputerName"))
        self.assertIn(info["ComputerName"].split(".")[0],
                      (socket.gethostname().split(".")[0],
                       socket.getfqdn().split(".")[0]))
        ipaddress.ip_address(info["IPAddress"])
        self.assertEqual(info.get("Name"), "e2e-main")
        self.assertEqual(info.get("IamRole"), harness.TEST_ROLE)
        self.assertIsInstance(info.get("LastPingDateTime"),
                              datetime.datetime)
        self.assertIsInstance(info.get("RegistrationDate"),
                              datetime.datetime)
        self.assertTrue(info.get("ActivationId"))

        online = ssm.describe_instance_information(Filters=[
            {"Key": "PingStatus", "Values": ["Online"]}
        ])["InstanceInformationList"]
        self.assertIn(self.target, [x["InstanceId"] for x in online])
        lost = ssm.describe_instance_information(Filters=[
            {"Key": "PingStatus", "Values": ["ConnectionLost"]}
        ])["InstanceInformationList"]
        self.assertNotIn(self.target, [x["InstanceId"] for x in lost])
        every = ssm.describe_instance_information()[
            "InstanceInformationList"]
        self.assertIn(self.target, [x["InstanceId"] for x in every])
        # The older InstanceInformationFilterList form.
        old = ssm.describe_instance_information(
            InstanceInformationFilterList=[
                {"key": "InstanceIds", "valueSet": [self.target]}
            ])["InstanceInformationList"]
        self.assertEqual([x["InstanceId"] for x in old], [self.target])

        nobody = ssm.describe_instance_information(Filters=[
            {"Key": "InstanceIds", "Values": ["mi-00000000000000000"]}
        ])["InstanceInformationList"]
        self.assertEqual(nobody, [])

    def test_instance_errors(self):
        ssm = self.cluster.ssm()
        self.assertClientError(("InvalidInstanceInformationFilterValue",
                                "InvalidFilterKey", "ValidationException"),
                               ssm.describe_instance_information, Filters=[
                                   {"Key": "PingStatus",
                                    "Values": ["Sleepy"]}])
        self.assertClientError("InvalidInstanceId",
                               ssm.deregister_managed_instance,
                               InstanceId="mi-00000000000000000")
        self.assertClientError(("InvalidResourceId", "InvalidInstanceId"),
                               ssm.list_tags_for_resource,
                               ResourceType="ManagedInstance",
                               ResourceId="mi-00000000000000000")
        self.assertClientError(("InvalidResourceType", "ValidationException"),
                               ssm.list_tags_for_resource,
                               ResourceType="Bogus", ResourceId=self.target)

    def test_tags(self):
        ssm = self.cluster.ssm()
        rid = dict(ResourceType="ManagedInstance", ResourceId=self.target)
        ssm.add_tags_to_resource(Tags=[{"Key": "env", "Value": "e2e"},
                                       {"Key": "team", "Value": "ops"}],
                                 **rid)
        tags = ssm.list_tags_for_resource(**rid)["TagList"]
        self.assertEqual(sorted((t["Key"], t["Value"]) for t in tags),
                         [("env", "e2e"), ("team", "ops")])
        # Overwrite one value.
        ssm.add_tags_to_resource(Tags=[{"Key": "env", "Value": "prod"}],
                                 **rid)
        tags = {t["Key"]: t["Value"]
                for t in ssm.list_tags_for_resource(**rid)["TagList"]}
        self.assertEqual(tags, {"env": "prod", "team": "ops"})
        ssm.remove_tags_from_resource(TagKeys=["env"], **rid)
        tags = ssm.list_tags_for_resource(**rid)["TagList"]
        self.assertEqual([(t["Key"], t["Value"]) for t in tags],
                         [("team", "ops")])
        ssm.remove_tags_from_resource(TagKeys=["team"], **rid)
        self.assertEqual(ssm.list_tags_for_resource(**rid)["TagList"], [])

    def test_connection_status(self):
        ssm = self.cluster.ssm()
        r = ssm.get_connection_status(Target=self.target)
        self.assertEqual(r["Target"], self.target)
        self.assertEqual(r["Status"], "connected")
        r = ssm.get_connection_status(Target="mi-00000000000000000")
        self.assertEqual(r["Status"], "notconnected")

    def test_sessions_start_resume_terminate(self):
        ssm = self.cluster.ssm()
        r = ssm.start_session(Target=self.target)
        sid = r["SessionId"]
        self.assertTrue(r["TokenValue"])
        self.assertTrue(r["StreamUrl"].startswith("wss://"), r["StreamUrl"])
        self.assertIn(sid, r["StreamUrl"])

        active = ssm.describe_sessions(State="Active")["Sessions"]
        mine = [x for x in active if x["SessionId"] == sid]
        self.assertEqual(len(mine), 1, active)
        rec = mine[0]
        self.assertEqual(rec["Target"], self.target)
        self.assertIn(rec["Status"], ("Connected", "Connecting"))
        self.assertIsInstance(rec["StartDate"], datetime.datetime)
        self.assertTrue(rec.get("Owner"))
        by_target = ssm.describe_sessions(State="Active", Filters=[
            {"key": "Target", "value": self.target}])["Sessions"]
        self.assertIn(sid, [x["SessionId"] for x in by_target])
        by_other = ssm.describe_sessions(State="Active", Filters=[
            {"key": "Target", "value": "mi-00000000000000000"}])["Sessions"]
        self.assertEqual(by_other, [])

        r2 = ssm.resume_session(SessionId=sid)
        self.assertEqual(r2["SessionId"], sid)
        self.assertTrue(r2["TokenValue"])
        self.assertNotEqual(r2["TokenValue"], r["TokenValue"])
        self.assertTrue(r2["StreamUrl"].startswith("wss://"))

        self.assertEqual(ssm.terminate_session(SessionId=sid)["SessionId"],
                         sid)
        state, rec = self.cluster.wait_session_status(sid, ("Terminated",))
        self.assertEqual(state, "History")
        hist = ssm.describe_sessions(State="History", Filters=[
            {"key": "Status", "value": "Terminated"}])["Sessions"]
        self.assertIn(sid, [x["SessionId"] for x in hist])
        active = ssm.describe_sessions(State="Active")["Sessions"]
        self.assertNotIn(sid, [x["SessionId"] for x in active])
        # Terminating twice is harmless, as on AWS.
        ssm.terminate_session(SessionId=sid)

    def test_session_errors(self):
        ssm = self.cluster.ssm()
        self.assertClientError("TargetNotConnected", ssm.start_session,
                               Target="mi-00000000000000000")
        self.assertClientError(("InvalidDocument", "ValidationException"),
                               ssm.start_session, Target=self.target,
                               DocumentName="No-Such-Document")
        self.assertClientError("DoesNotExistException", ssm.resume_session,
                               SessionId="nobody-0123456789abcdef0")
        self.assertClientError(("InvalidFilterKey", "ValidationException"),
                               self.cluster.ssm(validate=False)
                               .describe_sessions, State="Active",
                               Filters=[{"key": "Bogus", "value": "x"}])
        self.assertClientError("ValidationException",
                               self.cluster.ssm(validate=False)
                               .describe_sessions, State="Sometimes")


class Deregister(harness.ClusterTestCase):
    with_agent = False

    def test_offline_agent_is_not_connected(self):
        a = self.cluster.add_agent("idle", start=False)
        ssm = self.cluster.ssm()
        self.assertEqual(
            ssm.get_connection_status(Target=a.instance_id)["Status"],
            "notconnected")
        self.assertClientError("TargetNotConnected", ssm.start_session,
                               Target=a.instance_id)

    def test_deregister_managed_instance(self):
        a = self.cluster.add_agent("doomed")
        ssm = self.cluster.ssm()
        iid = a.instance_id
        # The agent's client certificate and key (src/agent/state.h).
        cert = os.path.join(a.state_dir, "cert.pem")
        key = os.path.join(a.state_dir, "key.pem")
        self.assertTrue(os.path.exists(cert), a.state_files())
        self.assertTrue(os.path.exists(key), a.state_files())
        ssm.add_tags_to_resource(ResourceType="ManagedInstance",
                                 ResourceId=iid,
                                 Tags=[{"Key": "k", "Value": "v"}])

        ssm.deregister_managed_instance(InstanceId=iid)
        self.assertIsNone(self.cluster.instance_info(iid))
        every = ssm.describe_instance_information()["InstanceInformationList"]
        self.assertNotIn(iid, [x["InstanceId"] for x in every])
        harness.wait_for(
            lambda: ssm.get_connection_status(Target=iid)["Status"] ==
            "notconnected", 10, 0.3, "the deregistered agent to disconnect")
        self.assertClientError("TargetNotConnected", ssm.start_session,
                               Target=iid)
        self.assertClientError("InvalidInstanceId",
                               ssm.deregister_managed_instance,
                               InstanceId=iid)

        # Its certificate no longer opens a control channel.
        ws = harness.RawWebSocket(
            self.cluster.port,
            "/v1/control-channel/%s?role=subscribe&stream=input" % iid,
            self.cluster.ca, cert=cert, key=key)
        try:
            self.assertNotEqual(ws.status, 101)
            self.assertIn(ws.status, (401, 403))
        finally:
            ws.close()
        # And the agent process, retrying, stays disconnected.
        for _ in range(3):
            self.assertEqual(
                ssm.get_connection_status(Target=iid)["Status"],
                "notconnected")
            time.sleep(1)


if __name__ == "__main__":
    harness.main()
