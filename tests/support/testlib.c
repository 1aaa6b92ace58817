#include "test.h"

#include <stdarg.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int test_failures;
int test_checks;

void
test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	test_failures++;
	fprintf(stderr, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
test_finish(void)
{
	fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);
	if (test_checks == 0) {
		fprintf(stderr, "no checks ran\n");
		return 1;
	}
	return test_failures == 0 ? 0 : 1;
}

const char *
test_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		fprintf(stderr, "FAIL: environment variable %s is not set "
		    "(ctest sets it; integration tests get theirs from tests/support/with-stack)\n", name);
		exit(1);
	}
	return v;
}

int
test_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	fprintf(stderr, "+ %s\n", cmd);
	rc = system(cmd);
	if (rc == -1)
		return -1;
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int
test_wait_port(int port, int timeout_ms)
{
	struct sockaddr_in sin;
	int waited, fd, ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (waited = 0; ; waited += 50) {
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			return -1;
		ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (ok)
			return 0;
		if (waited >= timeout_ms)
			return -1;
		usleep(50 * 1000);
	}
}

int
test_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	REQUIRE(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}
