"""portholed stopping with connections still open: an idle keep-alive
API connection, a TCP connection that never started TLS, and one in the
middle of a request header. SIGTERM must close each through its owner
and exit 0; under the sanitizer build (e2e-asan) the harness also fails
the test if LeakSanitizer finds anything those connections held."""

import socket
import ssl

import harness


class ServerStopWithOpenConnections(harness.ClusterTestCase):

    with_agent = False

    def test_open_connections_are_closed_on_stop(self):
        c = self.cluster
        # boto3 keeps its connection open for the next call.
        ssm = c.ssm()
        ssm.describe_activations()
        raw = socket.create_connection(("127.0.0.1", c.port), timeout=10)
        ctx = ssl.create_default_context(cafile=c.ca)
        half = ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", c.port), timeout=10),
            server_hostname="127.0.0.1")
        half.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
        try:
            self.assertEqual(c.stop_server(), 0,
                             harness.tail(c.server_log, 40))
            for s in (raw, half):
                s.settimeout(10)
                try:
                    self.assertEqual(s.recv(1), b"")
                except (ConnectionError, ssl.SSLError):
                    pass
        finally:
            raw.close()
            half.close()
        # The next portholed serves the same data directory.
        c.start_server()
        c.ssm().describe_activations()


if __name__ == "__main__":
    harness.main()
