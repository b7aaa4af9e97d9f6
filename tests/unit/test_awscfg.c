/* awscfg: where credentials, region, endpoint and CA bundle come from, in
 * the AWS CLI's order; profiles in both files; clean errors for missing
 * profiles, missing credentials and garbage files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/awscfg.h"
#include "common/err.h"

static char tmpdir[256];
static char credpath[512], confpath[512];

static const char *const aws_env[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION",
	"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM",
	"AWS_ENDPOINT_URL_KMS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	"AWS_CA_BUNDLE", "AWS_ENDPOINT_URL_STS",
};

static void
write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void
write_str(const char *path, const char *s)
{
	write_file(path, s, strlen(s));
}

static int
setup(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(aws_env) / sizeof(aws_env[0]); i++)
		unsetenv(aws_env[i]);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/porthole-awscfg-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	setenv("HOME", tmpdir, 1);
	snprintf(credpath, sizeof(credpath), "%s/creds", tmpdir);
	snprintf(confpath, sizeof(confpath), "%s/conf", tmpdir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", credpath, 1);
	setenv("AWS_CONFIG_FILE", confpath, 1);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[600];

	(void)state;
	unlink(credpath);
	unlink(confpath);
	snprintf(cmd, sizeof(cmd), "%s/.aws/credentials", tmpdir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/.aws/config", tmpdir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/.aws", tmpdir);
	rmdir(cmd);
	snprintf(cmd, sizeof(cmd), "%s/ca.pem", tmpdir);
	unlink(cmd);
	rmdir(tmpdir);
	return 0;
}

static const char creds_file[] =
    "# comment\n"
    "; another comment\n"
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULT\n"
    "aws_secret_access_key = secretdefault\n"
    "\n"
    "[dev]\r\n"
    "  aws_access_key_id=AKIDDEV  \r\n"
    "aws_secret_access_key : secretdev\r\n"
    "aws_session_token = tokendev\r\n"
    "region = eu-west-1\r\n";

static const char conf_file[] =
    "[default]\n"
    "region = us-east-1\n"
    "s3 =\n"
    "    addressing_style = path\n"
    "[profile dev]\n"
    "region = us-west-2\n"
    "endpoint_url = https://porthole.example:8443\n"
    "[profile cfgonly]\n"
    "aws_access_key_id = AKIDCFG\n"
    "aws_secret_access_key = secretcfg\n"
    "region = ap-south-1\n"
    "ca_bundle = /dev/null\n"
    "[cfgonly]\n"
    "region = not-a-profile-section\n"
    "[profile role]\n"
    "role_arn = arn:aws:iam::123456789012:role/x\n"
    "source_profile = default\n"
    "[profile role-nosource]\n"
    "role_arn = arn:aws:iam::123456789012:role/x\n"
    "[profile role-ec2]\n"
    "role_arn = arn:aws:iam::123456789012:role/x\n"
    "credential_source = Ec2InstanceMetadata\n"
    "[profile role-mfa]\n"
    "role_arn = arn:aws:iam::123456789012:role/x\n"
    "source_profile = default\n"
    "mfa_serial = arn:aws:iam::123456789012:mfa/u\n"
    "[profile loop-a]\n"
    "role_arn = arn:aws:iam::123456789012:role/a\n"
    "source_profile = loop-b\n"
    "[profile loop-b]\n"
    "role_arn = arn:aws:iam::123456789012:role/b\n"
    "source_profile = loop-a\n"
    "[profile role-badduration]\n"
    "role_arn = arn:aws:iam::123456789012:role/x\n"
    "source_profile = default\n"
    "duration_seconds = 60\n"
    "[profile role-badsource]\n"
    "role_arn = arn:aws:iam::123456789012:role/x\n"
    "source_profile = partial\n"
    "[profile partial]\n"
    "aws_access_key_id = AKIDPARTIAL\n"
    "region = us-east-1\n"
    "[profile noregion]\n"
    "aws_access_key_id = AKIDNR\n"
    "aws_secret_access_key = secretnr\n";

static void
test_files_and_profiles(void **state)
{
	struct client_awscfg c;

	(void)state;
	write_str(credpath, creds_file);
	write_str(confpath, conf_file);

	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.profile, "default");
	assert_string_equal(c.access_key_id, "AKIDDEFAULT");
	assert_string_equal(c.secret_access_key, "secretdefault");
	assert_string_equal(c.session_token, "");
	assert_string_equal(c.region, "us-east-1");
	assert_string_equal(c.endpoint, "https://ssm.us-east-1.amazonaws.com");
	assert_string_equal(c.kms_endpoint,
	    "https://kms.us-east-1.amazonaws.com");
	assert_string_equal(c.cred_source, "shared-credentials-file");
	assert_string_equal(c.ca_bundle, "");

	/* Explicit profile; the credentials file's region wins over the
	 * config file's for the same profile. */
	assert_int_equal(client_awscfg_load(&c, "dev", NULL, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDDEV");
	assert_string_equal(c.secret_access_key, "secretdev");
	assert_string_equal(c.session_token, "tokendev");
	assert_string_equal(c.region, "eu-west-1");
	assert_string_equal(c.endpoint, "https://porthole.example:8443");
	assert_string_equal(client_awscfg_endpoint(&c, "kms"),
	    "https://porthole.example:8443");
	assert_string_equal(client_awscfg_endpoint(&c, "ssm"),
	    "https://porthole.example:8443");

	/* AWS_PROFILE selects; credentials only in the config file; a
	 * section without "profile " is not a profile. */
	setenv("AWS_PROFILE", "cfgonly", 1);
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.profile, "cfgonly");
	assert_string_equal(c.access_key_id, "AKIDCFG");
	assert_string_equal(c.cred_source, "config-file");
	assert_string_equal(c.region, "ap-south-1");
	assert_string_equal(c.ca_bundle, "/dev/null");
	/* AWS_DEFAULT_PROFILE is read first, as botocore does. */
	setenv("AWS_DEFAULT_PROFILE", "dev", 1);
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.profile, "dev");
	unsetenv("AWS_DEFAULT_PROFILE");
	/* An explicit profile beats AWS_PROFILE. */
	assert_int_equal(client_awscfg_load(&c, "default", NULL, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDDEFAULT");
	unsetenv("AWS_PROFILE");

	/* Missing profile, by argument and by environment. */
	assert_int_equal(client_awscfg_load(&c, "nope", NULL, NULL),
	    PH_ERR_NOTFOUND);
	assert_string_equal(c.error,
	    "The config profile (nope) could not be found");
	assert_string_equal(c.access_key_id, "");
	setenv("AWS_PROFILE", "nope2", 1);
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL),
	    PH_ERR_NOTFOUND);
	assert_string_equal(c.error,
	    "The config profile (nope2) could not be found");
	unsetenv("AWS_PROFILE");
	assert_int_equal(client_awscfg_load(&c, "cfgonly ", NULL, NULL),
	    PH_ERR_NOTFOUND);

	/* A role profile calls STS AssumeRole with its source profile's
	 * credentials (test_awsapi covers the call): here nothing listens,
	 * and the failure is the call's, not a fall-through to the source
	 * profile's credentials. */
	setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1);
	setenv("AWS_REGION", "us-east-1", 1);
	assert_int_equal(client_awscfg_load(&c, "role", NULL, NULL),
	    PH_ERR_IO);
	assert_non_null(strstr(c.error, "Could not connect"));
	assert_string_equal(c.access_key_id, "");
	/* Role profiles it cannot serve are errors, not a silent
	 * fall-through to other credentials. */
	assert_int_equal(client_awscfg_load(&c, "role-nosource", NULL, NULL),
	    PH_ERR_INVALID);
	assert_non_null(strstr(c.error, "no source_profile"));
	assert_int_equal(client_awscfg_load(&c, "role-ec2", NULL, NULL),
	    PH_ERR_INVALID);
	assert_non_null(strstr(c.error, "credential_source"));
	assert_int_equal(client_awscfg_load(&c, "role-mfa", NULL, NULL),
	    PH_ERR_INVALID);
	assert_non_null(strstr(c.error, "mfa_serial"));
	assert_int_equal(client_awscfg_load(&c, "loop-a", NULL, NULL),
	    PH_ERR_INVALID);
	assert_non_null(strstr(c.error, "a loop?"));
	assert_int_equal(client_awscfg_load(&c, "role-badduration", NULL,
	    NULL), PH_ERR_INVALID);
	assert_non_null(strstr(c.error, "duration_seconds"));
	assert_int_equal(client_awscfg_load(&c, "role-badsource", NULL, NULL),
	    PH_ERR_INVALID);
	assert_non_null(strstr(c.error, "source_profile (partial)"));
	unsetenv("AWS_ENDPOINT_URL_STS");
	unsetenv("AWS_REGION");
	/* Unsupported providers and partial credentials are errors, not a
	 * silent fall-through to other credentials. */
	assert_int_equal(client_awscfg_load(&c, "partial", NULL, NULL),
	    PH_ERR_INVALID);
	assert_string_equal(c.error, "Partial credentials found in "
	    "config-file, missing: aws_secret_access_key");
	/* No region anywhere. */
	assert_int_equal(client_awscfg_load(&c, "noregion", NULL, NULL),
	    PH_ERR_NOTFOUND);
	assert_non_null(strstr(c.error, "You must specify a region."));
	assert_int_equal(client_awscfg_load(&c, "noregion", "ca-central-1",
	    NULL), 0);
	assert_string_equal(c.endpoint,
	    "https://ssm.ca-central-1.amazonaws.com");
	client_awscfg_clear(&c);
	assert_string_equal(c.secret_access_key, "");
}

static void
test_env_precedence(void **state)
{
	struct client_awscfg c;

	(void)state;
	write_str(credpath, creds_file);
	write_str(confpath, conf_file);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SESSION_TOKEN", "tokenenv", 1);

	/* The environment beats the default profile's files... */
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDENV");
	assert_string_equal(c.secret_access_key, "secretenv");
	assert_string_equal(c.session_token, "tokenenv");
	assert_string_equal(c.cred_source, "env");
	/* ...and AWS_PROFILE's, while the region still comes from it... */
	setenv("AWS_PROFILE", "dev", 1);
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDENV");
	assert_string_equal(c.region, "eu-west-1");
	unsetenv("AWS_PROFILE");
	/* ...but not an explicit profile. */
	assert_int_equal(client_awscfg_load(&c, "dev", NULL, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDDEV");
	assert_string_equal(c.session_token, "tokendev");

	/* Partial environment credentials. */
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL),
	    PH_ERR_INVALID);
	assert_string_equal(c.error, "Partial credentials found in env, "
	    "missing: AWS_SECRET_ACCESS_KEY");
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);

	/* Region: argument > AWS_REGION > AWS_DEFAULT_REGION > file. */
	setenv("AWS_DEFAULT_REGION", "eu-central-1", 1);
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.region, "eu-central-1");
	setenv("AWS_REGION", "eu-north-1", 1);
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.region, "eu-north-1");
	assert_string_equal(c.endpoint, "https://ssm.eu-north-1.amazonaws.com");
	assert_int_equal(client_awscfg_load(&c, NULL, "sa-east-1", NULL), 0);
	assert_string_equal(c.region, "sa-east-1");
	assert_int_equal(client_awscfg_load(&c, NULL, "Bad Region", NULL),
	    PH_ERR_INVALID);

	/* Endpoint: argument > AWS_ENDPOINT_URL_SSM > AWS_ENDPOINT_URL >
	 * profile endpoint_url > public default. */
	assert_int_equal(client_awscfg_load(&c, "dev", NULL, NULL), 0);
	assert_string_equal(c.endpoint, "https://porthole.example:8443");
	setenv("AWS_ENDPOINT_URL", "https://all.example", 1);
	assert_int_equal(client_awscfg_load(&c, "dev", NULL, NULL), 0);
	assert_string_equal(c.endpoint, "https://all.example");
	assert_string_equal(c.kms_endpoint, "https://all.example");
	setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:8080", 1);
	setenv("AWS_ENDPOINT_URL_KMS", "https://kms.example", 1);
	assert_int_equal(client_awscfg_load(&c, "dev", NULL, NULL), 0);
	assert_string_equal(c.endpoint, "http://127.0.0.1:8080");
	assert_string_equal(c.kms_endpoint, "https://kms.example");
	assert_int_equal(client_awscfg_load(&c, "dev", NULL,
	    "https://override.example/"), 0);
	assert_string_equal(c.endpoint, "https://override.example/");
	assert_string_equal(c.kms_endpoint, "https://override.example/");
	/* Plugin mode: argv6 is SSM's; KMS keeps its own. */
	assert_int_equal(client_awscfg_load_plugin(&c, "dev", NULL,
	    "https://argv6.example"), 0);
	assert_string_equal(c.endpoint, "https://argv6.example");
	assert_string_equal(c.kms_endpoint, "https://kms.example");
	unsetenv("AWS_ENDPOINT_URL_KMS");
	assert_int_equal(client_awscfg_load_plugin(&c, "dev", NULL,
	    "https://argv6.example"), 0);
	assert_string_equal(c.kms_endpoint, "https://all.example");
	unsetenv("AWS_ENDPOINT_URL");
	assert_int_equal(client_awscfg_load_plugin(&c, "dev", NULL,
	    "https://argv6.example"), 0);
	assert_string_equal(c.kms_endpoint, "https://porthole.example:8443");
	assert_int_equal(client_awscfg_load_plugin(&c, NULL, NULL,
	    "https://argv6.example"), 0);
	assert_string_equal(c.endpoint, "https://argv6.example");
	assert_string_equal(c.kms_endpoint,
	    "https://kms.eu-north-1.amazonaws.com");
	assert_int_equal(client_awscfg_load_plugin(&c, NULL, NULL, ""), 0);
	assert_string_equal(c.endpoint, "http://127.0.0.1:8080");
	setenv("AWS_ENDPOINT_URL_KMS", "https://kms.example", 1);
	setenv("AWS_ENDPOINT_URL", "https://all.example", 1);
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
	assert_int_equal(client_awscfg_load(&c, "dev", NULL, NULL), 0);
	assert_string_equal(c.endpoint, "https://ssm.eu-north-1.amazonaws.com");
	unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	assert_int_equal(client_awscfg_load(&c, "dev", NULL,
	    "ftp://x.example"), PH_ERR_INVALID);
	assert_non_null(strstr(c.error, "Invalid endpoint"));
	assert_int_equal(client_awscfg_load(&c, "dev", NULL,
	    "https://a b.example"), PH_ERR_INVALID);

	/* CA bundle: AWS_CA_BUNDLE > ca_bundle; an unreadable one is an
	 * error now rather than a TLS failure later. */
	assert_int_equal(client_awscfg_load(&c, "cfgonly", NULL, NULL), 0);
	assert_string_equal(c.ca_bundle, "/dev/null");
	{
		char ca[600];

		snprintf(ca, sizeof(ca), "%s/ca.pem", tmpdir);
		write_str(ca, "not really a certificate\n");
		setenv("AWS_CA_BUNDLE", ca, 1);
		assert_int_equal(client_awscfg_load(&c, "cfgonly", NULL,
		    NULL), 0);
		assert_string_equal(c.ca_bundle, ca);
	}
	setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem", 1);
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL),
	    PH_ERR_INVALID);
	assert_non_null(strstr(c.error, "CA bundle"));
	client_awscfg_clear(&c);
}

static void
test_no_credentials(void **state)
{
	struct client_awscfg c;
	char dir[600], p[700];

	(void)state;
	/* No files at all. */
	assert_int_equal(client_awscfg_load(&c, NULL, "us-east-1", NULL),
	    PH_ERR_NOTFOUND);
	assert_string_equal(c.error, "Unable to locate credentials. You can "
	    "configure credentials by running \"aws configure\".");
	/* The default files under HOME are used when the variables are not
	 * set. */
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	snprintf(dir, sizeof(dir), "%s/.aws", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(p, sizeof(p), "%s/credentials", dir);
	write_str(p, "[default]\naws_access_key_id=AKIDHOME\n"
	    "aws_secret_access_key=secrethome\n");
	snprintf(p, sizeof(p), "%s/config", dir);
	write_str(p, "[default]\nregion=us-east-2\n");
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDHOME");
	assert_string_equal(c.region, "us-east-2");
	/* "~/" in the variables is expanded. */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials", 1);
	assert_int_equal(client_awscfg_load(&c, NULL, NULL, NULL), 0);
	assert_string_equal(c.access_key_id, "AKIDHOME");
	client_awscfg_clear(&c);
}

static void
expect_bad_file(const char *path, const void *data, size_t n)
{
	struct client_awscfg c;

	write_file(path, data, n);
	assert_int_equal(client_awscfg_load(&c, NULL, "us-east-1", NULL),
	    PH_ERR_INVALID);
	if (strstr(c.error, "Unable to parse config file") == NULL &&
	    strstr(c.error, "Unable to read config file") == NULL)
		fail_msg("unexpected error: %s", c.error);
	assert_string_equal(c.access_key_id, "");
	unlink(path);
}

static void
test_garbage_files(void **state)
{
	uint8_t junk[8192];
	char *big;
	size_t i;
	uint32_t seed = 7;

	(void)state;
	for (i = 0; i < sizeof(junk); i++) {
		seed = seed * 1103515245u + 12345u;
		junk[i] = (uint8_t)(seed >> 16);
	}
	expect_bad_file(credpath, junk, sizeof(junk));
	expect_bad_file(confpath, junk, sizeof(junk));
	/* A NUL in an otherwise fine file. */
	{
		static const char nul[] = "[default]\naws_access_key_id=A\0B\n";

		expect_bad_file(credpath, nul, sizeof(nul) - 1);
	}
	/* Lines too long. */
	big = malloc(100000);
	assert_non_null(big);
	memcpy(big, "[default]\naws_session_token = ", 30);
	memset(big + 30, 'x', 100000 - 31);
	big[99999] = '\n';
	expect_bad_file(credpath, big, 100000);
	/* A file far too large. */
	free(big);
	big = malloc((size_t)2 << 20);
	assert_non_null(big);
	memset(big, '#', (size_t)2 << 20);
	for (i = 100; i < ((size_t)2 << 20); i += 100)
		big[i] = '\n';
	expect_bad_file(confpath, big, (size_t)2 << 20);
	free(big);
	/* Syntax errors. */
	expect_bad_file(credpath, "aws_access_key_id = x\n", 22);
	expect_bad_file(credpath, "[default\nx = y\n", 15);
	expect_bad_file(credpath, "[]\nx = y\n", 9);
	expect_bad_file(credpath, "[default]\njust words\n", 21);
	expect_bad_file(confpath, "[default]\n= value\n", 18);
	/* A directory where a file should be. */
	{
		struct client_awscfg c;

		assert_int_equal(mkdir(credpath, 0700), 0);
		assert_int_equal(client_awscfg_load(&c, NULL, "us-east-1",
		    NULL), PH_ERR_INVALID);
		assert_non_null(strstr(c.error, credpath));
		rmdir(credpath);
	}
	/* An empty file and a comments-only file are fine (no creds). */
	{
		struct client_awscfg c;

		write_str(credpath, "");
		write_str(confpath, "# nothing\n\n   \n;\n");
		assert_int_equal(client_awscfg_load(&c, NULL, "us-east-1",
		    NULL), PH_ERR_NOTFOUND);
	}
	/* Values with control characters are refused. */
	{
		struct client_awscfg c;

		write_str(credpath, "[default]\naws_access_key_id = A\tB\n"
		    "aws_secret_access_key = s\n");
		assert_int_equal(client_awscfg_load(&c, NULL, "us-east-1",
		    NULL), PH_ERR_INVALID);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_files_and_profiles, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_env_precedence, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_credentials, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_garbage_files, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
