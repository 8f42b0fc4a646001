/*
 * checks_test.c — Lua health checks (shim/lua/checks.c) at scale: 1,000 HTTP
 * checks in one world against a local server all become healthy, each
 * reported once, and the whole set's health follows.
 */
#include "harness.h"

#include "../../shim/lua/checks.h"
#include "../../shim/lua/luaapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS     1000000LL
#define CHECKS 1000

typedef struct {
	int fd;
	rt_pollfd *pd;
	rt_chan *done;
} server;

static void serve_one(void *arg) {
	int fd = (int)(intptr_t)arg, perr;
	rt_pollfd *pd = rt_poll_open(fd, &perr);
	char buf[2048];
	if (pd && rt_read(pd, buf, sizeof buf, rt_deadline_in(2000 * MS)) > 0) {
		static const char resp[] =
		    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
		rt_write(pd, resp, sizeof resp - 1, rt_deadline_in(2000 * MS));
	}
	if (pd)
		rt_poll_close(pd);
	close(fd);
}

static void acceptor(void *arg) {
	server *s = arg;
	for (;;) {
		int c = rt_accept(s->pd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC, RT_FOREVER);
		if (c < 0)
			break;
		rt_go(serve_one, (void *)(intptr_t)c, "test http conn");
	}
	int one = 1;
	rt_chan_send(s->done, &one);
}

typedef struct {
	int healthy_checks, health_healthy;
} counts;

static void on_event(void *arg, const char *type, json_t *f) {
	counts *c = arg;
	const char *subject = json_string_value(json_object_get(f, "subject"));
	const char *to = json_string_value(json_object_get(f, "to"));
	if (subject && to && !strcmp(to, "healthy")) {
		if (!strcmp(subject, "check"))
			c->healthy_checks++;
		else if (!strcmp(subject, "health"))
			c->health_healthy++;
	}
	json_decref(f);
}

static int many_main(void *arg) {
	server s = {.done = rt_chan_new(sizeof(int), 1)};
	s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	CHECK(bind(s.fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s.fd, 4096) == 0);
	CHECK(getsockname(s.fd, (struct sockaddr *)&sa, &sl) == 0);
	int perr;
	CHECK((s.pd = rt_poll_open(s.fd, &perr)));
	rt_go(acceptor, &s, "test http server");

	ms_err err = {0};
	lw_config lc = {.name = "many", .mem_limit = 64u << 20};
	lw_world *w = lw_new(&lc, &err);
	CHECK(w);
	la_set_netns(w, -1);
	la_open(w);
	counts cnt = {0};
	hk_checks *hk = hk_new(w, on_event, &cnt);
	char src[512];
	snprintf(src, sizeof src,
	         "for i = 1, %d do\n"
	         "  check { name = 'c' .. i, interval = 0.25, timeout = 2, retries = 1,\n"
	         "    run = function() local r = http.get('http://127.0.0.1:%d/healthz', {timeout "
	         "= 2})\n"
	         "      return r ~= nil and r.status == 200 end }\n"
	         "end\n",
	         (int)scaled(CHECKS), ntohs(sa.sin_port));
	CHECKF(lw_load(w, "many.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	CHECK(hk_count(hk) == scaled(CHECKS));
	int64_t t0 = rt_now();
	CHECKF(hk_start(hk, &err) == 0, "%s", err.msg);
	while (cnt.healthy_checks < scaled(CHECKS) && rt_now() - t0 < 10000 * MS)
		rt_sleep(20 * MS);
	int64_t took = rt_now() - t0;
	json_t *j = hk_json(hk);
	const char *status = json_string_value(json_object_get(j, "Status"));
	fprintf(stderr, "%ld checks healthy after %lld ms; set status %s\n", scaled(CHECKS),
	        (long long)(took / MS), status ? status : "?");
	CHECKF(cnt.healthy_checks == scaled(CHECKS), "%d of %ld checks became healthy",
	       cnt.healthy_checks, scaled(CHECKS));
	CHECK(cnt.health_healthy == 1 && status && !strcmp(status, "healthy"));
	json_decref(j);
	lw_stats st;
	lw_stats_get(w, &st);
	fprintf(stderr, "world memory %zu bytes (%zu per check)\n", st.mem_used,
	        st.mem_used / (size_t)scaled(CHECKS));
	hk_stop(hk);
	lw_free(w);
	rt_poll_evict(s.pd);
	int x;
	rt_chan_recv(s.done, &x);
	rt_poll_close(s.pd);
	close(s.fd);
	rt_chan_free(s.done);
	return 0;
}

TEST(checks_1000_http_checks_become_healthy) {
	run_rt(2, many_main, NULL);
}

/* exec.host: status, output, stdin, env, and a deadline that kills the
 * command's whole process group. */
static int exec_main(void *arg) {
	ms_err err = {0};
	lw_config lc = {.name = "exec"};
	lw_world *w = lw_new(&lc, &err);
	CHECK(w);
	la_open(w);
	const char *src =
	    "function f()\n"
	    "  local r = exec.host({'sh', '-c', 'cat; echo err >&2; exit 3'}, {stdin = 'hello', "
	    "timeout = 5})\n"
	    "  assert(r.status == 3 and r.stdout == 'hello' and r.stderr == 'err\\n', r.status .. "
	    "r.stdout .. r.stderr)\n"
	    "  local t0 = now()\n"
	    "  local t = exec.host({'sh', '-c', 'echo $FOO; sleep 5 & wait'}, {timeout = 0.2, env "
	    "= {FOO = 'bar'}})\n"
	    "  assert(t.timed_out and t.stdout == 'bar\\n', tostring(t.timed_out) .. t.stdout)\n"
	    "  assert(now() - t0 < 2, 'the deadline took ' .. (now() - t0))\n"
	    "  local n, e = exec.host({'/nonexistent/cmd'})\n"
	    "  assert(n == nil and e:find('nonexistent'), e)\n"
	    "end\n";
	CHECKF(lw_load(w, "exec.lua", src, strlen(src), &err) == 0, "%s", err.msg);
	CHECKF(lw_call(w, "f", &err) == 0, "%s", err.msg);
	lw_free(w);
	return 0;
}

TEST(lua_exec_host_status_output_timeout) {
	run_rt(1, exec_main, NULL);
}
