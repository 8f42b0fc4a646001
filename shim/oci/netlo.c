/*
 * netlo.c — bringing up lo in the container's new network namespace with
 * libnl: the child calls it once it is in the namespace (rtnetlink acts on
 * the namespace the socket was created in).
 */
#define _GNU_SOURCE
#include "ct_internal.h"

#include <errno.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <string.h>

int ct__loopback_up(ms_err *err) {
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_link *lo = NULL, *change = NULL;
	int rc, ret = 0;
	if (!sk)
		return ms_fail(err, -ENOMEM, "loopback: nl_socket_alloc failed");
	if ((rc = nl_connect(sk, NETLINK_ROUTE)) < 0 ||
	    (rc = rtnl_link_get_kernel(sk, 0, "lo", &lo)) < 0) {
		ret = ms_fail(err, -EIO, "loopback: %s", nl_geterror(rc));
		goto out;
	}
	change = rtnl_link_alloc();
	rtnl_link_set_flags(change, IFF_UP);
	if ((rc = rtnl_link_change(sk, lo, change, 0)) < 0)
		ret = ms_fail(err, -EIO, "loopback: setting lo up: %s", nl_geterror(rc));
out:
	if (change)
		rtnl_link_put(change);
	if (lo)
		rtnl_link_put(lo);
	nl_socket_free(sk);
	return ret;
}
