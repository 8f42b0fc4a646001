/*
 * netlo.c — bringing up lo in a new network namespace with libnl, from the
 * parent. A thread joins the namespace (setns for a network namespace is
 * per thread), opens the rtnetlink socket there (a socket stays bound to
 * the namespace it was created in) and sets IFF_UP; the rest of the
 * process never leaves its own namespace.
 */
#define _GNU_SOURCE
#include "ct_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
	int nsfd;
	ms_err *err;
	int rc;
} lo_job;

static void *loopback_thread(void *arg) {
	lo_job *j = arg;
	if (setns(j->nsfd, CLONE_NEWNET) < 0) {
		j->rc = ms_fail(j->err, -errno, "network namespace: setns: %s", strerror(errno));
		return NULL;
	}
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_link *lo = NULL, *change = NULL;
	int rc;
	if (!sk) {
		j->rc = ms_fail(j->err, -ENOMEM, "loopback: nl_socket_alloc failed");
		return NULL;
	}
	if ((rc = nl_connect(sk, NETLINK_ROUTE)) < 0 || (rc = rtnl_link_get_kernel(sk, 0, "lo", &lo)) < 0) {
		j->rc = ms_fail(j->err, -EIO, "loopback: %s", nl_geterror(rc));
		goto out;
	}
	change = rtnl_link_alloc();
	rtnl_link_set_flags(change, IFF_UP);
	if ((rc = rtnl_link_change(sk, lo, change, 0)) < 0)
		j->rc = ms_fail(j->err, -EIO, "loopback: setting lo up: %s", nl_geterror(rc));
out:
	if (change)
		rtnl_link_put(change);
	if (lo)
		rtnl_link_put(lo);
	nl_socket_free(sk);
	return NULL;
}

int ct__loopback_up(pid_t pid, ms_err *err) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
	lo_job j = {.nsfd = open(path, O_RDONLY | O_CLOEXEC), .err = err};
	if (j.nsfd < 0)
		return ms_fail(err, -errno, "%s: %s", path, strerror(errno));
	pthread_t t;
	int rc = pthread_create(&t, NULL, loopback_thread, &j);
	if (rc == 0)
		pthread_join(t, NULL);
	else
		j.rc = ms_fail(err, -rc, "loopback: pthread_create: %s", strerror(rc));
	close(j.nsfd);
	return j.rc;
}
