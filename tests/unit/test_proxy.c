/* proxy: proxy URLs (good and garbage), the no_proxy rules, the
 * environment's precedence, agent.json's Proxy object and the libcurl
 * settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "agent/state.h"
#include "common/err.h"
#include "common/proxy.h"

static void
clear_env(void)
{
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
}

static void
test_url_good(void **state)
{
	struct proxy_config *cfg;
	const struct proxy *px;
	char err[256];

	(void)state;
	assert_int_equal(proxy_config_new(&cfg, "http://proxy.example:3128",
	    NULL, err, sizeof(err)), 0);
	px = proxy_for(cfg, "portholed.example", 443);
	assert_non_null(px);
	assert_string_equal(px->host, "proxy.example");
	assert_int_equal(px->port, 3128);
	assert_string_equal(px->url, "http://proxy.example:3128");
	assert_int_equal(px->has_auth, 0);
	proxy_config_free(cfg);

	/* No scheme: http://; no port: 1080 as curl. */
	assert_int_equal(proxy_config_new(&cfg, "10.0.0.1", NULL, err,
	    sizeof(err)), 0);
	px = proxy_for(cfg, "x", 443);
	assert_string_equal(px->url, "http://10.0.0.1:1080");
	proxy_config_free(cfg);

	assert_int_equal(proxy_config_new(&cfg, "HTTP://[::1]:8080/", NULL,
	    err, sizeof(err)), 0);
	px = proxy_for(cfg, "x", 443);
	assert_string_equal(px->host, "::1");
	assert_string_equal(px->url, "http://[::1]:8080");
	proxy_config_free(cfg);

	/* Credentials, percent-decoded, as Basic; not in url. */
	assert_int_equal(proxy_config_new(&cfg,
	    "http://al%40ice:p%3Ass@proxy:3128", NULL, err, sizeof(err)), 0);
	px = proxy_for(cfg, "x", 443);
	assert_int_equal(px->has_auth, 1);
	assert_string_equal(px->user, "al@ice");
	assert_string_equal(px->password, "p:ss");
	/* base64("al@ice:p:ss") */
	assert_string_equal(px->basic, "Basic YWxAaWNlOnA6c3M=");
	assert_null(strstr(px->url, "p:ss"));
	assert_null(strstr(px->url, "al"));
	proxy_config_free(cfg);

	/* Nothing set: direct. */
	assert_int_equal(proxy_config_new(&cfg, "", "", err, sizeof(err)), 0);
	assert_null(proxy_for(cfg, "x", 443));
	proxy_config_free(cfg);
	assert_null(proxy_for(NULL, "x", 443));
}

static void
test_url_garbage(void **state)
{
	static const char *bad[] = {
		"https://proxy:3128", "socks5://proxy:1080", "ftp://p",
		"http://", "http://proxy:0", "http://proxy:65536",
		"http://proxy:99999999999", "http://proxy:-1",
		"http://proxy:80/path", "http://proxy:80/?q=1",
		"http://proxy:80#frag", "http://pro xy:80", "http://\x01:80",
		"http://proxy\r\nX: y:80", ":::::", "[", "http://[::1",
		"http://a:b:c@", "\xff\xfe", "http://%00:80",
	};
	struct proxy_config *cfg;
	char err[256], big[8192];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cfg = (struct proxy_config *)1;
		assert_int_not_equal(proxy_config_new(&cfg, bad[i], NULL, err,
		    sizeof(err)), 0);
		assert_null(cfg);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(proxy_config_new(&cfg, "https://p:1", NULL, err,
	    sizeof(err)), PH_ERR_INVALID);
	assert_non_null(strstr(err, "not supported"));
	/* The password never appears in an error. */
	assert_int_not_equal(proxy_config_new(&cfg,
	    "http://u:sekrit@p:80/x", NULL, err, sizeof(err)), 0);
	assert_null(strstr(err, "sekrit"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_not_equal(proxy_config_new(&cfg, big, NULL, err,
	    sizeof(err)), 0);
	assert_int_not_equal(proxy_config_new(&cfg, "http://p:1", big, err,
	    sizeof(err)), 0);
}

static void
test_no_proxy(void **state)
{
	(void)state;
	assert_true(proxy_no_proxy_match("*", "anything", 1));
	assert_true(proxy_no_proxy_match("example.com", "example.com", 443));
	assert_true(proxy_no_proxy_match("example.com", "a.b.example.com",
	    443));
	assert_true(proxy_no_proxy_match(".example.com", "a.example.com",
	    443));
	assert_true(proxy_no_proxy_match(".example.com", "example.com",
	    443));
	assert_true(proxy_no_proxy_match("EXAMPLE.com.", "Example.COM.",
	    443));
	assert_false(proxy_no_proxy_match("example.com", "badexample.com",
	    443));
	assert_false(proxy_no_proxy_match("example.com", "example.com.evil",
	    443));
	assert_true(proxy_no_proxy_match("a, b ,example.com", "example.com",
	    1));
	assert_true(proxy_no_proxy_match("a b\texample.com", "example.com",
	    1));
	/* Ports. */
	assert_true(proxy_no_proxy_match("example.com:8443", "example.com",
	    8443));
	assert_false(proxy_no_proxy_match("example.com:8443", "example.com",
	    443));
	assert_false(proxy_no_proxy_match("example.com:x", "example.com",
	    443));
	assert_false(proxy_no_proxy_match("example.com:", "example.com",
	    443));
	/* IP literals match whole, never as a suffix. */
	assert_true(proxy_no_proxy_match("10.1.2.3", "10.1.2.3", 443));
	assert_false(proxy_no_proxy_match("2.3", "10.1.2.3", 443));
	assert_true(proxy_no_proxy_match("127.0.0.1:8443", "127.0.0.1",
	    8443));
	assert_true(proxy_no_proxy_match("::1", "::1", 443));
	assert_true(proxy_no_proxy_match("::1", "[::1]", 443));
	assert_true(proxy_no_proxy_match("[::1]", "::1", 443));
	assert_true(proxy_no_proxy_match("[::1]:8443", "::1", 8443));
	assert_false(proxy_no_proxy_match("[::1]:8443", "::1", 443));
	assert_false(proxy_no_proxy_match("[::1]x", "::1", 443));
	/* Garbage lists never match by accident nor crash. */
	assert_false(proxy_no_proxy_match("", "example.com", 443));
	assert_false(proxy_no_proxy_match(",,, ,", "example.com", 443));
	assert_false(proxy_no_proxy_match("[", "example.com", 443));
	assert_false(proxy_no_proxy_match("[]:", "example.com", 443));
	assert_false(proxy_no_proxy_match("...", "example.com", 443));
	assert_false(proxy_no_proxy_match(":443", "example.com", 443));
	assert_false(proxy_no_proxy_match("**", "example.com", 443));
	assert_false(proxy_no_proxy_match(NULL, "example.com", 443));
	assert_false(proxy_no_proxy_match("a", NULL, 443));
	assert_false(proxy_no_proxy_match("a", "", 443));
}

static void
test_env(void **state)
{
	struct proxy_config *cfg;
	const struct proxy *px;
	char err[256];

	(void)state;
	clear_env();
	assert_int_equal(proxy_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_null(proxy_for(cfg, "x", 443));
	proxy_config_free(cfg);

	/* Lower case wins; empty counts as unset. */
	setenv("HTTPS_PROXY", "http://upper:1", 1);
	setenv("https_proxy", "http://lower:2", 1);
	setenv("NO_PROXY", "skip.upper", 1);
	setenv("no_proxy", "skip.lower", 1);
	assert_int_equal(proxy_config_from_env(&cfg, err, sizeof(err)), 0);
	px = proxy_for(cfg, "x", 443);
	assert_string_equal(px->host, "lower");
	assert_null(proxy_for(cfg, "skip.lower", 443));
	assert_non_null(proxy_for(cfg, "skip.upper", 443));
	proxy_config_free(cfg);
	setenv("https_proxy", "", 1);
	setenv("no_proxy", "", 1);
	assert_int_equal(proxy_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(proxy_for(cfg, "x", 443)->host, "upper");
	assert_null(proxy_for(cfg, "skip.upper", 443));
	proxy_config_free(cfg);

	/* Garbage: a clear error, never a silent direct route. */
	setenv("https_proxy", "https://p:3128", 1);
	assert_int_not_equal(proxy_config_from_env(&cfg, err, sizeof(err)),
	    0);
	assert_non_null(strstr(err, "https_proxy"));
	assert_non_null(strstr(err, "not supported"));
	setenv("https_proxy", "\x01\x02garbage\x7f", 1);
	assert_int_not_equal(proxy_config_from_env(&cfg, err, sizeof(err)),
	    0);
	setenv("https_proxy", "http://p:1", 1);
	setenv("no_proxy", "\xff\xfe,[,]::::,*x", 1);
	assert_int_equal(proxy_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_non_null(proxy_for(cfg, "x", 443));
	proxy_config_free(cfg);
	clear_env();
}

static void
test_default_and_url(void **state)
{
	struct proxy_config *cfg;
	char err[256];
	CURL *h;

	(void)state;
	assert_int_equal(proxy_config_new(&cfg, "http://p:3128",
	    "direct.example,127.0.0.1:8443", err, sizeof(err)), 0);
	proxy_set_default(cfg);
	assert_non_null(proxy_for_url("https://portholed.example:8443/x"));
	assert_null(proxy_for_url("https://direct.example/x"));
	assert_null(proxy_for_url("https://127.0.0.1:8443/v1/register"));
	assert_non_null(proxy_for_url("https://127.0.0.1:9443/"));
	assert_null(proxy_for_url("wss://a.direct.example:443/"));
	assert_null(proxy_for_url("weird://a.direct.example/"));
	assert_non_null(proxy_for_url("weird://127.0.0.1/"));
	/* Not a URL: through the proxy rather than around it. */
	assert_non_null(proxy_for_url("::::"));
	h = curl_easy_init();
	assert_non_null(h);
	assert_int_equal(proxy_curl_apply(h, "https://x:1/"), 0);
	assert_int_equal(proxy_curl_apply(h, "https://direct.example/"), 0);
	curl_easy_cleanup(h);
	proxy_set_default(NULL);
	assert_null(proxy_for_url("https://portholed.example:8443/x"));
}

static int
parse(struct agent_state *st, const char *s)
{
	char err[256];

	memset(st, 0, sizeof(*st));
	return agent_state_parse(st, s, strlen(s), err, sizeof(err));
}

#define AJ "{\"InstanceId\":\"mi-0123456789abcdef0\"," \
	"\"Endpoint\":\"https://h:8443\",\"Region\":\"r\""

static void
test_agent_json(void **state)
{
	struct agent_state st;
	char err[256];

	(void)state;
	clear_env();
	assert_int_equal(parse(&st, AJ "}"), 0);
	assert_int_equal(st.proxy_set, 0);
	assert_int_equal(parse(&st, AJ ",\"Proxy\":{\"Url\":"
	    "\"http://p:3128\",\"NoProxy\":\"a,b\"}}"), 0);
	assert_int_equal(st.proxy_set, 1);
	assert_string_equal(st.proxy_url, "http://p:3128");
	assert_string_equal(st.no_proxy, "a,b");
	/* agent.json wins over the environment. */
	setenv("https_proxy", "http://envproxy:1", 1);
	assert_int_equal(agent_proxy_setup(&st, err, sizeof(err)), 0);
	assert_string_equal(proxy_for_url("https://h:8443/")->host, "p");
	assert_null(proxy_for_url("https://b:8443/"));
	/* An empty Url: direct, whatever the environment says. */
	assert_int_equal(parse(&st, AJ ",\"Proxy\":{\"Url\":\"\"}}"), 0);
	assert_int_equal(agent_proxy_setup(&st, err, sizeof(err)), 0);
	assert_null(proxy_for_url("https://h:8443/"));
	/* No Proxy object: the environment. */
	assert_int_equal(parse(&st, AJ "}"), 0);
	assert_int_equal(agent_proxy_setup(&st, err, sizeof(err)), 0);
	assert_string_equal(proxy_for_url("https://h:8443/")->host,
	    "envproxy");
	clear_env();
	proxy_set_default(NULL);
	/* Garbage. */
	assert_int_not_equal(parse(&st, AJ ",\"Proxy\":\"http://p:1\"}"), 0);
	assert_int_not_equal(parse(&st, AJ ",\"Proxy\":{\"Url\":5}}"), 0);
	assert_int_not_equal(parse(&st, AJ ",\"Proxy\":{\"NoProxy\":[]}}"),
	    0);
	assert_int_not_equal(parse(&st, AJ ",\"Proxy\":{\"Url\":"
	    "\"https://p:1\"}}"), 0);
	assert_int_not_equal(parse(&st, AJ ",\"Proxy\":{\"Url\":"
	    "\"http://p:70000\"}}"), 0);
	assert_int_equal(parse(&st, AJ ",\"Proxy\":null}"), 0);
	assert_int_equal(st.proxy_set, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_good),
		cmocka_unit_test(test_url_garbage),
		cmocka_unit_test(test_no_proxy),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_default_and_url),
		cmocka_unit_test(test_agent_json),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
