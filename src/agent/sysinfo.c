#include "agent/sysinfo.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Copy one os-release value (line[0..n)) into out, unquoting it: "..."
 * with backslash escapes, '...' literal, or bare. Control characters are
 * dropped. */
static void
osr_value(const char *v, size_t n, char *out, size_t out_len)
{
	size_t i = 0, o = 0;
	char q = 0, c;

	if (out_len == 0)
		return;
	if (n > 0 && (v[0] == '"' || v[0] == '\'')) {
		q = v[0];
		i = 1;
	}
	for (; i < n; i++) {
		c = v[i];
		if (q != 0 && c == q)
			break;
		if (q == '"' && c == '\\' && i + 1 < n)
			c = v[++i];
		if (q == 0 && (c == ' ' || c == '\t' || c == '#'))
			break;
		if ((unsigned char)c < 0x20 || c == 0x7f)
			continue;
		if (o + 1 < out_len)
			out[o++] = c;
	}
	out[o] = '\0';
}

void
agent_osrelease_parse(const char *text, size_t n, char *name,
    size_t name_len, char *version, size_t version_len)
{
	const char *line = text, *end = text + n, *eol, *eq;

	if (name_len > 0)
		name[0] = '\0';
	if (version_len > 0)
		version[0] = '\0';
	while (line < end) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		while (line < eol && (*line == ' ' || *line == '\t'))
			line++;
		eq = memchr(line, '=', (size_t)(eol - line));
		if (eq != NULL) {
			size_t klen = (size_t)(eq - line);
			size_t vlen = (size_t)(eol - eq - 1);

			if (vlen > 0 && eq[vlen] == '\r')
				vlen--;
			if (klen == 4 && memcmp(line, "NAME", 4) == 0)
				osr_value(eq + 1, vlen, name, name_len);
			else if (klen == 10 &&
			    memcmp(line, "VERSION_ID", 10) == 0)
				osr_value(eq + 1, vlen, version, version_len);
		}
		line = eol + 1;
	}
}

static void
sysinfo_osrelease(struct agent_sysinfo *si)
{
	static const char *paths[] = { "/etc/os-release",
	    "/usr/lib/os-release" };
	char text[8192];
	ssize_t r;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		r = read(fd, text, sizeof(text));
		close(fd);
		if (r <= 0)
			continue;
		agent_osrelease_parse(text, (size_t)r, si->platform_name,
		    sizeof(si->platform_name), si->platform_version,
		    sizeof(si->platform_version));
		return;
	}
	snprintf(si->platform_name, sizeof(si->platform_name), "Linux");
}

static void
sysinfo_ip(struct agent_sysinfo *si)
{
	struct ifaddrs *ifa = NULL, *i;
	struct sockaddr_in *sin;

	snprintf(si->ip_address, sizeof(si->ip_address), "127.0.0.1");
	if (getifaddrs(&ifa) != 0)
		return;
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		sin = (struct sockaddr_in *)(void *)i->ifa_addr;
		if (inet_ntop(AF_INET, &sin->sin_addr, si->ip_address,
		    sizeof(si->ip_address)) != NULL)
			break;
		snprintf(si->ip_address, sizeof(si->ip_address), "127.0.0.1");
	}
	freeifaddrs(ifa);
}

void
agent_sysinfo_collect(struct agent_sysinfo *si)
{
	memset(si, 0, sizeof(*si));
	sysinfo_osrelease(si);
	if (gethostname(si->hostname, sizeof(si->hostname) - 1) != 0)
		snprintf(si->hostname, sizeof(si->hostname), "localhost");
	sysinfo_ip(si);
}
