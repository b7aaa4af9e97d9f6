/* awscfg: find credentials, region and endpoints as the AWS CLI v1 does.
 *
 * Credentials, first found wins: explicit profile? skip the environment;
 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN]; the shared
 * credentials file's [PROFILE]; the config file's [profile PROFILE] (or
 * [default]). Settings (region, endpoint_url, ca_bundle) come from the
 * environment, then the profile, where the credentials file's keys win
 * over the config file's for the same profile, as botocore merges them. */
#include "client/awscfg.h"
#include "client/awsapi.h"
#include "common/buf.h"
#include "common/err.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* Entries kept per file; a real file has a few dozen. */
#define AWSCFG_MAX_ENTRIES 4096
/* Profiles whose source_profile is itself a role, at most. */
#define AWSCFG_MAX_CHAIN 4

static int awscfg_load_depth(struct client_awscfg *, const char *,
    const char *, const char *, const char *, int);

struct ini_entry {
	char *section;	/* profile name, already mapped for the config file */
	char *key;	/* lower-cased */
	char *value;
};

struct ini {
	struct ini_entry *v;
	size_t n;
	char path[4096];
	int present;	/* the file existed */
};

static void cfg_err(struct client_awscfg *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
cfg_err(struct client_awscfg *cfg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cfg->error, sizeof(cfg->error), fmt, ap);
	va_end(ap);
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static void
ini_free(struct ini *ini)
{
	size_t i;

	for (i = 0; i < ini->n; i++) {
		free(ini->v[i].section);
		if (ini->v[i].value != NULL)
			OPENSSL_cleanse(ini->v[i].value,
			    strlen(ini->v[i].value));
		free(ini->v[i].key);
		free(ini->v[i].value);
	}
	free(ini->v);
	ini->v = NULL;
	ini->n = 0;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Map a section header to a profile name, or NULL for sections that are
 * not profiles. In the config file profiles are "[default]" and
 * "[profile NAME]"; in the credentials file every section is a profile. */
static const char *
section_profile(char *name, int is_config)
{
	if (!is_config)
		return name;
	if (strcmp(name, "default") == 0)
		return name;
	if (strncmp(name, "profile", 7) == 0 &&
	    (name[7] == ' ' || name[7] == '\t')) {
		name = trim(name + 7);
		return *name != '\0' ? name : NULL;
	}
	return NULL;
}

static int
ini_add(struct ini *ini, const char *section, const char *key,
    const char *value)
{
	struct ini_entry *e;
	size_t i;

	if (ini->n == AWSCFG_MAX_ENTRIES)
		return PH_ERR_TOOBIG;
	if (ini->n % 64 == 0) {
		e = realloc(ini->v, (ini->n + 64) * sizeof(*e));
		if (e == NULL)
			return PH_ERR_NOMEM;
		ini->v = e;
	}
	e = &ini->v[ini->n];
	e->section = strdup(section);
	e->key = strdup(key);
	e->value = strdup(value);
	if (e->section == NULL || e->key == NULL || e->value == NULL) {
		free(e->section);
		free(e->key);
		free(e->value);
		return PH_ERR_NOMEM;
	}
	for (i = 0; e->key[i] != '\0'; i++)
		e->key[i] = (char)tolower((unsigned char)e->key[i]);
	ini->n++;
	return 0;
}

/* Read and parse an INI file. A missing file is not an error (the CLI
 * treats it as empty); anything unreadable or malformed is. */
static int
ini_load(struct ini *ini, const char *path, int is_config, char *err,
    size_t errlen)
{
	struct buf b;
	struct stat st;
	char line[CLIENT_AWSCFG_MAX_LINE + 2];
	char section[CLIENT_AWSCFG_MAX_LINE];
	const char *profile = NULL;
	size_t off, len, lineno = 0, i;
	ssize_t n;
	int fd = -1, rc = 0, have_key = 0, in_section = 0;

	memset(ini, 0, sizeof(*ini));
	buf_init(&b, CLIENT_AWSCFG_MAX_FILE);
	snprintf(ini->path, sizeof(ini->path), "%s", path);
	section[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			goto done;
		snprintf(err, errlen, "Unable to read config file: %s (%s)",
		    path, strerror(errno));
		rc = PH_ERR_INVALID;
		goto done;
	}
	/* /dev/null is a common way to say "no config" (the CLI accepts it);
	 * reads stay bounded by the buffer's limit whatever the file is. */
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "Unable to read config file: %s (is a "
		    "directory)", path);
		rc = PH_ERR_INVALID;
		goto done;
	}
	ini->present = 1;
	for (;;) {
		if ((rc = buf_reserve(&b, 4096)) != 0) {
			snprintf(err, errlen, "Unable to parse config file: %s "
			    "(larger than %zu bytes)", path,
			    (size_t)CLIENT_AWSCFG_MAX_FILE);
			rc = PH_ERR_INVALID;
			goto done;
		}
		n = read(fd, b.data + b.len, 4096);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "Unable to read config file: %s "
			    "(%s)", path, strerror(errno));
			rc = PH_ERR_INVALID;
			goto done;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
	}

	for (off = 0; off < b.len; off += len + 1) {
		const uint8_t *nl = memchr(b.data + off, '\n', b.len - off);
		char *s, *delim;
		const char *why = NULL;

		len = nl != NULL ? (size_t)(nl - (b.data + off)) : b.len - off;
		lineno++;
		if (len > CLIENT_AWSCFG_MAX_LINE) {
			why = "line too long";
			goto bad;
		}
		memcpy(line, b.data + off, len);
		line[len] = '\0';
		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)line[i];

			if ((c < 0x20 && c != '\t' && c != '\r') ||
			    c == 0x7f) {
				why = "control character";
				goto bad;
			}
		}
		/* An indented line after a key continues its value (nested
		 * settings such as "s3 =\n  addressing_style = path"); none
		 * of those are ours. */
		if ((line[0] == ' ' || line[0] == '\t') && have_key &&
		    *trim(line) != '\0')
			continue;
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';') {
			continue;
		}
		if (*s == '[') {
			char *close = strrchr(s, ']');

			if (close == NULL || close[1] != '\0' ||
			    close == s + 1) {
				why = "malformed section header";
				goto bad;
			}
			*close = '\0';
			snprintf(section, sizeof(section), "%s", s + 1);
			profile = section_profile(trim(section), is_config);
			in_section = 1;
			have_key = 0;
			continue;
		}
		if (!in_section) {
			why = "key before any section header";
			goto bad;
		}
		delim = strpbrk(s, "=:");
		if (delim == NULL || delim == s) {
			why = "expected 'key = value'";
			goto bad;
		}
		*delim = '\0';
		have_key = 1;
		if (profile == NULL)
			continue;
		rc = ini_add(ini, profile, trim(s), trim(delim + 1));
		if (rc != 0) {
			snprintf(err, errlen, "Unable to parse config file: %s "
			    "(%s)", path, rc == PH_ERR_TOOBIG ? "too many "
			    "entries" : "out of memory");
			rc = rc == PH_ERR_TOOBIG ? PH_ERR_INVALID : rc;
			goto done;
		}
		continue;
bad:
		snprintf(err, errlen, "Unable to parse config file: %s (line "
		    "%zu: %s)", path, lineno, why);
		rc = PH_ERR_INVALID;
		goto done;
	}
done:
	if (fd >= 0)
		close(fd);
	if (b.data != NULL)
		OPENSSL_cleanse(b.data, b.cap);
	OPENSSL_cleanse(line, sizeof(line));
	buf_free(&b);
	if (rc != 0)
		ini_free(ini);
	return rc;
}

/* The last value of key in the profile's section(s). */
static const char *
ini_get(const struct ini *ini, const char *profile, const char *key)
{
	const char *v = NULL;
	size_t i;

	for (i = 0; i < ini->n; i++)
		if (strcmp(ini->v[i].section, profile) == 0 &&
		    strcmp(ini->v[i].key, key) == 0)
			v = ini->v[i].value;
	return v;
}

static int
ini_has_profile(const struct ini *ini, const char *profile)
{
	size_t i;

	for (i = 0; i < ini->n; i++)
		if (strcmp(ini->v[i].section, profile) == 0)
			return 1;
	return 0;
}

static const char *
get_nonempty(const struct ini *ini, const char *profile, const char *key)
{
	const char *v = ini_get(ini, profile, key);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* A setting of the profile: the credentials file wins over the config. */
static const char *
profile_setting(const struct ini *creds, const struct ini *conf,
    const char *profile, const char *key)
{
	const char *v = get_nonempty(creds, profile, key);

	return v != NULL ? v : get_nonempty(conf, profile, key);
}

static int
home_dir(char *out, size_t size)
{
	const char *h = env("HOME");
	struct passwd pw, *res = NULL;
	char pwbuf[4096];

	if (h == NULL && getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf),
	    &res) == 0 && res != NULL)
		h = res->pw_dir;
	if (h == NULL)
		return -1;
	return snprintf(out, size, "%s", h) < (int)size ? 0 : -1;
}

/* The file named by the environment variable, with "~/" expanded, else
 * ~/.aws/<def>. */
static int
file_path(char *out, size_t size, const char *envname, const char *def)
{
	char home[4096];
	const char *p = env(envname);
	int n;

	if (p != NULL && (p[0] != '~' || (p[1] != '/' && p[1] != '\0')))
		n = snprintf(out, size, "%s", p);
	else {
		if (home_dir(home, sizeof(home)) != 0) {
			if (p == NULL) {
				out[0] = '\0';	/* no home: no default file */
				return 0;
			}
			return -1;
		}
		n = p != NULL ? snprintf(out, size, "%s%s", home, p + 1) :
		    snprintf(out, size, "%s/.aws/%s", home, def);
	}
	return n >= 0 && (size_t)n < size ? 0 : -1;
}

static int
copy_value(struct client_awscfg *cfg, char *dst, size_t size,
    const char *value, const char *what)
{
	const unsigned char *p;

	for (p = (const unsigned char *)value; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f) {
			cfg_err(cfg, "The %s contains whitespace or a control "
			    "character.", what);
			return PH_ERR_INVALID;
		}
	if (strlen(value) >= size) {
		cfg_err(cfg, "The %s is too long.", what);
		return PH_ERR_INVALID;
	}
	snprintf(dst, size, "%s", value);
	return 0;
}

static int
set_credentials(struct client_awscfg *cfg, const char *akid,
    const char *secret, const char *token, const char *source,
    const char *akid_name, const char *secret_name)
{
	int rc;

	if (akid == NULL || secret == NULL) {
		cfg_err(cfg, "Partial credentials found in %s, missing: %s",
		    source, akid == NULL ? akid_name : secret_name);
		return PH_ERR_INVALID;
	}
	if ((rc = copy_value(cfg, cfg->access_key_id,
	    sizeof(cfg->access_key_id), akid, "access key id")) != 0 ||
	    (rc = copy_value(cfg, cfg->secret_access_key,
	    sizeof(cfg->secret_access_key), secret,
	    "secret access key")) != 0)
		return rc;
	if (token != NULL && (rc = copy_value(cfg, cfg->session_token,
	    sizeof(cfg->session_token), token, "session token")) != 0)
		return rc;
	cfg->cred_source = source;
	return 0;
}

static int
valid_region(const char *r)
{
	size_t i, n = strlen(r);

	if (n == 0 || n >= sizeof(((struct client_awscfg *)0)->region))
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)r[i]) &&
		    !isdigit((unsigned char)r[i]) && r[i] != '-')
			return 0;
	return 1;
}

static int
set_endpoint(struct client_awscfg *cfg, char *dst, size_t size,
    const char *url, const char *from)
{
	const unsigned char *p;

	if (strncasecmp(url, "https://", 8) != 0 &&
	    strncasecmp(url, "http://", 7) != 0) {
		cfg_err(cfg, "Invalid endpoint: %.200s (from %s): it must "
		    "start with https:// or http://", url, from);
		return PH_ERR_INVALID;
	}
	for (p = (const unsigned char *)url; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f) {
			cfg_err(cfg, "Invalid endpoint (from %s): it contains "
			    "whitespace or a non-ASCII character", from);
			return PH_ERR_INVALID;
		}
	if (strlen(url) >= size) {
		cfg_err(cfg, "Invalid endpoint (from %s): too long", from);
		return PH_ERR_INVALID;
	}
	snprintf(dst, size, "%s", url);
	return 0;
}

/* Endpoint for one service: override, AWS_ENDPOINT_URL_<SVC>,
 * AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS's public one.
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true skips environment and files. */
static int
resolve_endpoint(struct client_awscfg *cfg, char *dst, size_t size,
    const char *svc, const char *override, const struct ini *creds,
    const struct ini *conf)
{
	char envname[64], def[256];
	const char *v, *ign;
	int ignore;

	if (override != NULL && *override != '\0')
		return set_endpoint(cfg, dst, size, override, "--endpoint-url");
	ign = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	ignore = ign != NULL && strcasecmp(ign, "true") == 0;
	if (!ignore) {
		snprintf(envname, sizeof(envname), "AWS_ENDPOINT_URL_%s", svc);
		for (size_t i = 0; envname[i] != '\0'; i++)
			envname[i] = (char)toupper((unsigned char)envname[i]);
		if ((v = env(envname)) != NULL)
			return set_endpoint(cfg, dst, size, v, envname);
		if ((v = env("AWS_ENDPOINT_URL")) != NULL)
			return set_endpoint(cfg, dst, size, v,
			    "AWS_ENDPOINT_URL");
		v = profile_setting(creds, conf, cfg->profile, "endpoint_url");
		if (v != NULL)
			return set_endpoint(cfg, dst, size, v,
			    "the config file's endpoint_url");
	}
	snprintf(def, sizeof(def), "https://%s.%s.amazonaws.com", svc,
	    cfg->region);
	return set_endpoint(cfg, dst, size, def, "the region");
}

/* Keys that make the CLI use a credential provider we do not implement;
 * silently using other credentials instead would surprise. */
static const char *
unsupported_provider(const struct ini *conf, const char *profile)
{
	static const char *const keys[] = { "web_identity_token_file",
	    "sso_start_url", "sso_session" };
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (get_nonempty(conf, profile, keys[i]) != NULL)
			return keys[i];
	return NULL;
}

/* A profile with role_arn and source_profile: the source profile's
 * credentials (itself perhaps a role, up to AWSCFG_MAX_CHAIN deep) call
 * STS AssumeRole, as botocore's AssumeRoleProvider does; cfg gets the role
 * session's credentials. Region, endpoints and CA bundle are already
 * cfg's. */
static int
assume_role(struct client_awscfg *cfg, const struct ini *creds,
    const struct ini *conf, int depth)
{
	struct client_awscfg *src = NULL;
	char sts[2048], session[80];
	const char *arn, *source, *v;
	long duration = 0;
	char *end;
	int rc;

	arn = get_nonempty(conf, cfg->profile, "role_arn");
	source = get_nonempty(conf, cfg->profile, "source_profile");
	v = get_nonempty(conf, cfg->profile, "credential_source") != NULL ?
	    "credential_source" : get_nonempty(conf, cfg->profile,
	    "mfa_serial") != NULL ? "mfa_serial" : NULL;
	if (v != NULL) {
		cfg_err(cfg, "The config profile (%s) uses role_arn with %s, "
		    "which porthole does not support", cfg->profile, v);
		return PH_ERR_INVALID;
	}
	if (source == NULL) {
		cfg_err(cfg, "The config profile (%s) has role_arn but no "
		    "source_profile", cfg->profile);
		return PH_ERR_INVALID;
	}
	if (depth >= AWSCFG_MAX_CHAIN) {
		cfg_err(cfg, "The source_profile chain of the config profile "
		    "(%s) is longer than %d (a loop?)", cfg->profile,
		    AWSCFG_MAX_CHAIN);
		return PH_ERR_INVALID;
	}
	if ((v = get_nonempty(conf, cfg->profile, "duration_seconds")) !=
	    NULL) {
		duration = strtol(v, &end, 10);
		if (*end != '\0' || duration < 900 || duration > 43200) {
			cfg_err(cfg, "The config profile (%s) has an invalid "
			    "duration_seconds: %.32s", cfg->profile, v);
			return PH_ERR_INVALID;
		}
	}
	if ((v = get_nonempty(conf, cfg->profile, "role_session_name")) !=
	    NULL)
		snprintf(session, sizeof(session), "%s", v);
	else
		snprintf(session, sizeof(session), "porthole-session-%lld",
		    (long long)time(NULL));
	if ((rc = resolve_endpoint(cfg, sts, sizeof(sts), "sts", NULL, creds,
	    conf)) != 0)
		return rc;
	if ((src = calloc(1, sizeof(*src))) == NULL)
		return PH_ERR_NOMEM;
	if ((rc = awscfg_load_depth(src, source, cfg->region, NULL, NULL,
	    depth + 1)) != 0) {
		cfg_err(cfg, "The source_profile (%.100s) of the config profile "
		    "(%s): %s", source, cfg->profile, src->error);
		goto out;
	}
	/* The call goes where this profile says, trusting what it trusts. */
	snprintf(src->ca_bundle, sizeof(src->ca_bundle), "%s",
	    cfg->ca_bundle);
	if ((rc = client_awsapi_assume_role(src, sts, arn, session,
	    (int)duration, get_nonempty(conf, cfg->profile, "external_id"),
	    cfg, cfg->error, sizeof(cfg->error))) != 0)
		goto out;
	cfg->cred_source = "assume-role";
out:
	client_awscfg_clear(src);
	free(src);
	return rc;
}

static int
awscfg_load_depth(struct client_awscfg *cfg, const char *profile,
    const char *region_override, const char *endpoint_override,
    const char *kms_override, int depth)
{
	struct ini creds, conf;
	char path[4096];
	const char *v, *explicit_profile = NULL, *key;
	int rc, role = 0;

	memset(cfg, 0, sizeof(*cfg));
	memset(&creds, 0, sizeof(creds));
	memset(&conf, 0, sizeof(conf));
	if (profile != NULL && *profile != '\0')
		explicit_profile = profile;
	v = explicit_profile;
	if (v == NULL && (v = env("AWS_DEFAULT_PROFILE")) == NULL &&
	    (v = env("AWS_PROFILE")) == NULL)
		v = "default";
	if (strlen(v) >= sizeof(cfg->profile)) {
		cfg_err(cfg, "The config profile name is too long.");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	snprintf(cfg->profile, sizeof(cfg->profile), "%s", v);

	if (file_path(path, sizeof(path), "AWS_SHARED_CREDENTIALS_FILE",
	    "credentials") != 0) {
		cfg_err(cfg, "The shared credentials file path is too long "
		    "or HOME is unknown.");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if (path[0] != '\0' && (rc = ini_load(&creds, path, 0, cfg->error,
	    sizeof(cfg->error))) != 0)
		goto fail;
	if (file_path(path, sizeof(path), "AWS_CONFIG_FILE", "config") != 0) {
		cfg_err(cfg, "The config file path is too long or HOME is "
		    "unknown.");
		rc = PH_ERR_INVALID;
		goto fail;
	}
	if (path[0] != '\0' && (rc = ini_load(&conf, path, 1, cfg->error,
	    sizeof(cfg->error))) != 0)
		goto fail;
	/* botocore: a named profile must exist in one of the files; the
	 * default one may be absent. */
	if (strcmp(cfg->profile, "default") != 0 &&
	    !ini_has_profile(&creds, cfg->profile) &&
	    !ini_has_profile(&conf, cfg->profile)) {
		cfg_err(cfg, "The config profile (%s) could not be found",
		    cfg->profile);
		rc = PH_ERR_NOTFOUND;
		goto fail;
	}

	/* Credentials. */
	if (explicit_profile == NULL && (env("AWS_ACCESS_KEY_ID") != NULL ||
	    env("AWS_SECRET_ACCESS_KEY") != NULL)) {
		v = env("AWS_SESSION_TOKEN");
		if (v == NULL)
			v = env("AWS_SECURITY_TOKEN");
		rc = set_credentials(cfg, env("AWS_ACCESS_KEY_ID"),
		    env("AWS_SECRET_ACCESS_KEY"), v, "env",
		    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY");
		if (rc != 0)
			goto fail;
	} else if ((key = unsupported_provider(&conf, cfg->profile)) ==
	    NULL && get_nonempty(&conf, cfg->profile, "role_arn") != NULL) {
		role = 1;	/* after the region, endpoints and CA bundle */
	} else if (key != NULL) {
		cfg_err(cfg, "The config profile (%s) uses %s, which porthole "
		    "does not support; export AWS_ACCESS_KEY_ID, "
		    "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN instead",
		    cfg->profile, key);
		rc = PH_ERR_INVALID;
		goto fail;
	} else if (get_nonempty(&creds, cfg->profile,
	    "aws_access_key_id") != NULL || get_nonempty(&creds, cfg->profile,
	    "aws_secret_access_key") != NULL) {
		v = get_nonempty(&creds, cfg->profile, "aws_session_token");
		if (v == NULL)
			v = get_nonempty(&creds, cfg->profile,
			    "aws_security_token");
		rc = set_credentials(cfg, get_nonempty(&creds, cfg->profile,
		    "aws_access_key_id"), get_nonempty(&creds, cfg->profile,
		    "aws_secret_access_key"), v, "shared-credentials-file",
		    "aws_access_key_id", "aws_secret_access_key");
		if (rc != 0)
			goto fail;
	} else if (get_nonempty(&conf, cfg->profile,
	    "credential_process") != NULL) {
		cfg_err(cfg, "The config profile (%s) uses credential_process, "
		    "which porthole does not support", cfg->profile);
		rc = PH_ERR_INVALID;
		goto fail;
	} else if (get_nonempty(&conf, cfg->profile,
	    "aws_access_key_id") != NULL || get_nonempty(&conf, cfg->profile,
	    "aws_secret_access_key") != NULL) {
		v = get_nonempty(&conf, cfg->profile, "aws_session_token");
		if (v == NULL)
			v = get_nonempty(&conf, cfg->profile,
			    "aws_security_token");
		rc = set_credentials(cfg, get_nonempty(&conf, cfg->profile,
		    "aws_access_key_id"), get_nonempty(&conf, cfg->profile,
		    "aws_secret_access_key"), v, "config-file",
		    "aws_access_key_id", "aws_secret_access_key");
		if (rc != 0)
			goto fail;
	} else {
		cfg_err(cfg, "Unable to locate credentials. You can configure "
		    "credentials by running \"aws configure\".");
		rc = PH_ERR_NOTFOUND;
		goto fail;
	}

	/* Region. */
	if ((v = region_override) == NULL || *v == '\0') {
		if ((v = env("AWS_REGION")) == NULL &&
		    (v = env("AWS_DEFAULT_REGION")) == NULL)
			v = profile_setting(&creds, &conf, cfg->profile,
			    "region");
	}
	if (v == NULL) {
		cfg_err(cfg, "You must specify a region. You can also "
		    "configure your region by running \"aws configure\".");
		rc = PH_ERR_NOTFOUND;
		goto fail;
	}
	if (!valid_region(v)) {
		cfg_err(cfg, "Provided region_name '%.64s' doesn't match a "
		    "supported format.", v);
		rc = PH_ERR_INVALID;
		goto fail;
	}
	snprintf(cfg->region, sizeof(cfg->region), "%s", v);

	/* Endpoints. */
	if ((rc = resolve_endpoint(cfg, cfg->endpoint, sizeof(cfg->endpoint),
	    "ssm", endpoint_override, &creds, &conf)) != 0 ||
	    (rc = resolve_endpoint(cfg, cfg->kms_endpoint,
	    sizeof(cfg->kms_endpoint), "kms", kms_override, &creds,
	    &conf)) != 0)
		goto fail;

	/* CA bundle. */
	if ((v = env("AWS_CA_BUNDLE")) == NULL)
		v = profile_setting(&creds, &conf, cfg->profile, "ca_bundle");
	if (v != NULL) {
		if (strlen(v) >= sizeof(cfg->ca_bundle)) {
			cfg_err(cfg, "The CA bundle path is too long.");
			rc = PH_ERR_INVALID;
			goto fail;
		}
		if (access(v, R_OK) != 0) {
			cfg_err(cfg, "The CA bundle (%.300s) could not be "
			    "read: %s", v, strerror(errno));
			rc = PH_ERR_INVALID;
			goto fail;
		}
		snprintf(cfg->ca_bundle, sizeof(cfg->ca_bundle), "%s", v);
	}
	if (role && (rc = assume_role(cfg, &creds, &conf, depth)) != 0)
		goto fail;
	rc = 0;
fail:
	ini_free(&creds);
	ini_free(&conf);
	if (rc != 0) {
		char keep[sizeof(cfg->error)];

		memcpy(keep, cfg->error, sizeof(keep));
		client_awscfg_clear(cfg);
		memcpy(cfg->error, keep, sizeof(keep));
		if (cfg->error[0] == '\0')
			cfg_err(cfg, "Unable to load the AWS configuration: %s",
			    ph_strerror(rc));
	}
	return rc;
}

static int
awscfg_load(struct client_awscfg *cfg, const char *profile,
    const char *region_override, const char *endpoint_override,
    const char *kms_override)
{
	return awscfg_load_depth(cfg, profile, region_override,
	    endpoint_override, kms_override, 0);
}

int
client_awscfg_load(struct client_awscfg *cfg, const char *profile,
    const char *region_override, const char *endpoint_override)
{
	return awscfg_load(cfg, profile, region_override, endpoint_override,
	    endpoint_override);
}

int
client_awscfg_load_plugin(struct client_awscfg *cfg, const char *profile,
    const char *region_override, const char *ssm_endpoint)
{
	return awscfg_load(cfg, profile, region_override, ssm_endpoint,
	    NULL);
}

void
client_awscfg_clear(struct client_awscfg *cfg)
{
	OPENSSL_cleanse(cfg, sizeof(*cfg));
}

const char *
client_awscfg_endpoint(const struct client_awscfg *cfg, const char *service)
{
	if (service != NULL && strcmp(service, "kms") == 0)
		return cfg->kms_endpoint;
	return cfg->endpoint;
}
