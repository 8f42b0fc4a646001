/*
 * luajson_fuzz.c — the Lua json library (shim/lua/luaapi.c: json.decode on a
 * script's text, json.encode on what came out) in a real Lua world
 * (shim/lua/luaworld.c) on the runtime, as a health check or policy script
 * calls them: the input is the text a script would decode (an HTTP body,
 * an event's data).
 *
 * The world needs the runtime, so the runtime runs for the whole fuzzing
 * session on a thread of its own (rt_main, started in LLVMFuzzerInitialize);
 * its main goroutine keeps the world and runs the script's run() once per
 * input, woken through a pipe on the netpoller, and posts a semaphore when
 * done. libFuzzer's thread hands the input over and waits.
 *
 * Must hold: no crash, leak or undefined behaviour; what json.decode
 * accepts, json.encode either refuses with an error (nesting deeper than
 * it follows) or encodes to text that decodes again and encodes to the
 * same text (run() raises "fuzz invariant" otherwise, and this aborts).
 *
 * Known (tests/fuzz/known/README): nesting deep enough to overflow a
 * goroutine's stack in la_push_json; fuzz this target with a -max_len
 * that cannot nest that deep (tests/fuzz/run.sh passes it) until the
 * depth limit being added lands.
 */
#include "fuzz.h"
#include "luaapi.h"
#include "luaworld.h"
#include "rt.h"

#include <lua.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>

static const char SCRIPT[] =
    "function run()\n"
    "  local v = json.decode(fuzz_input())\n"
    "  if v == nil then return end\n"
    "  local ok, s1 = pcall(json.encode, v)\n"
    "  if not ok then return end\n"
    "  local v2, why = json.decode(s1)\n"
    "  if v2 == nil then error('fuzz invariant: encoded text does not decode: ' .. why) end\n"
    "  local s2 = json.encode(v2)\n"
    "  if s1 ~= s2 then error('fuzz invariant: unstable round trip: ' .. s1 .. ' / ' .. s2) end\n"
    "end\n";

static struct {
	const uint8_t *data;
	size_t size;
	int wake[2];     /* libFuzzer's thread writes a byte per input */
	sem_t done;      /* posted once the world is ready, then after each input */
	lw_world *world; /* a global: LeakSanitizer does not scan goroutine stacks */
	pthread_t thread;
} fz;

static int l_input(lua_State *L) {
	lua_pushlstring(L, (const char *)fz.data, fz.size);
	return 1;
}

static int serve(void *arg) {
	ms_err err = {0};
	lw_config c = {.name = "fuzz"};
	if (!(fz.world = lw_new(&c, &err))) {
		fprintf(stderr, "lw_new: %s\n", err.msg);
		abort();
	}
	la_open(fz.world);
	lw_register(fz.world, "fuzz_input", l_input);
	if (lw_load(fz.world, "fuzz.lua", SCRIPT, sizeof SCRIPT - 1, &err)) {
		fprintf(stderr, "lw_load: %s\n", err.msg);
		abort();
	}
	int e;
	rt_pollfd *pd = rt_poll_open(fz.wake[0], &e);
	if (!pd)
		abort();
	sem_post(&fz.done);
	char b;
	while (rt_read(pd, &b, 1, RT_FOREVER) == 1) {
		err = (ms_err){0};
		if (lw_call(fz.world, "run", &err) && strstr(err.msg, "fuzz invariant")) {
			fprintf(stderr, "%s\n", err.msg);
			abort();
		}
		sem_post(&fz.done);
	}
	return 0;
}

static void *runtime_thread(void *arg) {
	rt_config cfg = {.procs = 1, .quiet_leaks = true};
	rt_main(&cfg, serve, NULL);
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	if (pipe(fz.wake) || sem_init(&fz.done, 0, 0))
		abort();
	/* libFuzzer's timers (SIGALRM) go to its own thread, not the runtime's */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (pthread_create(&fz.thread, NULL, runtime_thread, NULL))
		abort();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	sem_wait(&fz.done);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	fz.data = data;
	fz.size = size;
	if (write(fz.wake[1], "x", 1) != 1)
		abort();
	while (sem_wait(&fz.done))
		;
	return 0;
}
