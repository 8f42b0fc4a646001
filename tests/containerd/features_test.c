/*
 * features_test.c — `-info`'s features document (shim/oci/features.c)
 * against what spec.c really accepts: every listed mount option is taken
 * by spec_from_json as a flag, a propagation or a bind (not handed to the
 * filesystem as data it may refuse), every listed namespace becomes one
 * the container gets, every listed hook kind is parsed into its slot; and
 * what is not listed (idmap, rro) is refused. The document is read from
 * oci_features() itself, so a line added there without spec.c support
 * fails here.
 */
#define _GNU_SOURCE
#include "harness.h"

#include "features.h"
#include "spec.h"

#include <jansson.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* a bundle with an empty rootfs/ (root.path must name a directory) */
typedef struct {
	char dir[64], rootfs[80];
} bundle;

static void bundle_make(bundle *b) {
	snprintf(b->dir, sizeof b->dir, "/tmp/moonshim-features-XXXXXX");
	CHECK(mkdtemp(b->dir));
	snprintf(b->rootfs, sizeof b->rootfs, "%s/rootfs", b->dir);
	CHECK(mkdir(b->rootfs, 0755) == 0);
}

static void bundle_remove(bundle *b) {
	rmdir(b->rootfs);
	rmdir(b->dir);
}

/* The smallest spec spec.c takes, with extra's keys merged in (extra is
 * taken over). */
static json_t *spec_json(json_t *extra) {
	json_t *root =
	    json_pack("{s:s, s:{s:[s], s:s}, s:{s:s}, s:{}}", "ociVersion", "1.0.2", "process",
	              "args", "/bin/true", "cwd", "/", "root", "path", "rootfs", "linux");
	CHECK(root);
	if (extra) {
		CHECK(json_object_update(root, extra) == 0);
		json_decref(extra);
	}
	return root;
}

/* spec_from_json on root; the spec or NULL (err says why). */
static spec *parse(const bundle *b, json_t *root, ms_err *err) {
	spec *s = NULL;
	*err = (ms_err){0};
	if (spec_from_json(root, b->dir, &s, err))
		return NULL;
	return s;
}

static json_t *features_list(const char *key) {
	json_t *f = oci_features();
	CHECK(f);
	json_t *l = json_object_get(f, key);
	if (!l) /* linux.namespaces */
		l = json_object_get(json_object_get(f, "linux"), key);
	CHECKF(json_is_array(l) && json_array_size(l) > 0, "features has no %s list", key);
	json_incref(l);
	json_decref(f);
	return l;
}

/* one tmpfs mount at /m with options opts (taken over), in a new mount
 * namespace (spec.c's condition for mounts) */
static json_t *mount_with(json_t *opts) {
	return json_pack("{s:[{s:s, s:s, s:s, s:o}], s:{s:[{s:s}]}}", "mounts", "destination", "/m",
	                 "type", "tmpfs", "source", "tmpfs", "options", opts, "linux", "namespaces",
	                 "type", "mount");
}

/* an idmapped bind of the bundle at /m (options opts, taken over) in a
 * container with a user namespace: spec.c's condition for idmap/ridmap */
static json_t *idmapped_bind_with(const bundle *b, json_t *opts) {
	json_t *map =
	    json_pack("[{s:i, s:i, s:i}]", "containerID", 0, "hostID", 100000, "size", 65536);
	return json_pack("{s:[{s:s, s:s, s:s, s:o}], s:{s:[{s:s}, {s:s}], s:O, s:o}}", "mounts",
	                 "destination", "/m", "type", "bind", "source", b->dir, "options", opts,
	                 "linux", "namespaces", "type", "mount", "type", "user", "uidMappings", map,
	                 "gidMappings", map);
}

static bool is_idmap_option(const char *name) {
	return !strcmp(name, "idmap") || !strcmp(name, "ridmap");
}

TEST(features_every_mount_option_is_one_spec_c_takes) {
	bundle b;
	bundle_make(&b);
	json_t *opts = features_list("mountOptions");
	size_t i;
	json_t *o;
	json_array_foreach(opts, i, o) {
		const char *name = json_string_value(o);
		ms_err err;
		json_t *m = is_idmap_option(name)
		                ? idmapped_bind_with(&b, json_pack("[s, s]", "rbind", name))
		                : mount_with(json_pack("[s]", name));
		spec *s = parse(&b, spec_json(m), &err);
		CHECKF(s, "mount option %s: refused: %s", name, err.msg);
		CHECKF(s->nmounts == 1, "mount option %s: %zu mounts", name, s->nmounts);
		/* taken as a flag, propagation or bind: nothing left for the fs */
		CHECKF(!s->mounts[0].data[0], "mount option %s went to the filesystem as \"%s\"",
		       name, s->mounts[0].data);
		CHECKF(s->nwarnings == 0, "mount option %s: warning %s", name, s->warnings[0]);
		spec_free(s);
	}
	json_decref(opts);
	/* the control: an option spec.c does not know is the filesystem's */
	ms_err err;
	spec *s = parse(&b, spec_json(mount_with(json_pack("[s]", "size=64k"))), &err);
	CHECKF(s && !strcmp(s->mounts[0].data, "size=64k"), "size=64k: %s",
	       s ? s->mounts[0].data : err.msg);
	spec_free(s);
	bundle_remove(&b);
}

TEST(features_every_namespace_is_one_the_container_gets) {
	static const struct {
		const char *name;
		int flag;
	} want[] = {{"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"mount", CLONE_NEWNS},
	            {"network", CLONE_NEWNET},   {"pid", CLONE_NEWPID}, {"time", CLONE_NEWTIME},
	            {"user", CLONE_NEWUSER},     {"uts", CLONE_NEWUTS}};
	bundle b;
	bundle_make(&b);
	json_t *nss = features_list("namespaces");
	size_t i;
	json_t *o;
	json_array_foreach(nss, i, o) {
		const char *name = json_string_value(o);
		int flag = 0;
		for (size_t k = 0; k < sizeof want / sizeof *want; k++)
			if (!strcmp(want[k].name, name))
				flag = want[k].flag;
		CHECKF(flag, "features lists namespace %s, not one of the runtime spec's", name);
		json_t *linux_ = json_pack("{s:[{s:s}]}", "namespaces", "type", name);
		if (flag == CLONE_NEWUSER) /* a user namespace needs its mappings */
			for (const char *const *m =
			         (const char *const[]){"uidMappings", "gidMappings", NULL};
			     *m; m++)
				json_object_set_new(linux_, *m,
				                    json_pack("[{s:i, s:i, s:i}]", "containerID", 0,
				                              "hostID", 100000, "size", 65536));
		ms_err err;
		spec *s = parse(&b, spec_json(json_pack("{s:o}", "linux", linux_)), &err);
		CHECKF(s, "namespace %s: refused: %s", name, err.msg);
		CHECKF(s->ns_new == flag, "namespace %s: the container gets %#x, not %#x", name,
		       s->ns_new, flag);
		spec_free(s);
	}
	CHECK(json_array_size(nss) == sizeof want / sizeof *want);
	json_decref(nss);
	bundle_remove(&b);
}

TEST(features_every_hook_kind_is_parsed_into_its_slot) {
	bundle b;
	bundle_make(&b);
	json_t *hooks = features_list("hooks");
	CHECK(json_array_size(hooks) == SPEC_HOOK_KINDS);
	size_t i;
	json_t *o;
	json_array_foreach(hooks, i, o) {
		const char *name = json_string_value(o);
		json_t *h = json_pack("{s:{s:[{s:s}]}}", "hooks", name, "path", "/bin/true");
		ms_err err;
		spec *s = parse(&b, spec_json(h), &err);
		CHECKF(s, "hook %s: refused: %s", name, err.msg);
		CHECKF(s->nwarnings == 0, "hook %s: warning %s", name, s->warnings[0]);
		int found = -1;
		for (int k = 0; k < SPEC_HOOK_KINDS; k++)
			if (s->nhooks[k])
				found = k;
		CHECKF(found >= 0 && !strcmp(spec_hook_name(found), name) && s->nhooks[found] == 1,
		       "hook %s: not in its slot", name);
		spec_free(s);
	}
	json_decref(hooks);
	bundle_remove(&b);
}

/* idmapped mounts are reported on with their options, and rro listed (the
 * option loop above parses each); an idmap option where spec.c cannot
 * honour it (not a bind) is refused naming the mount: the document and
 * the parser agree */
TEST(features_idmap_and_rro_are_listed_and_parsed) {
	bundle b;
	bundle_make(&b);
	json_t *f = oci_features();
	json_t *idmap = json_object_get(
	    json_object_get(json_object_get(json_object_get(f, "linux"), "mountExtensions"),
	                    "idmap"),
	    "enabled");
	CHECK(json_is_true(idmap));
	json_t *opts = json_object_get(f, "mountOptions");
	size_t i;
	json_t *o;
	int idmap_opts = 0, rro = 0;
	json_array_foreach(opts, i, o) {
		idmap_opts += is_idmap_option(json_string_value(o));
		rro += !strcmp(json_string_value(o), "rro");
	}
	CHECKF(idmap_opts == 2 && rro == 1, "idmap and ridmap listed: %d of 2, rro %d", idmap_opts,
	       rro);
	json_decref(f);
	ms_err err;
	CHECK(!parse(&b, spec_json(mount_with(json_pack("[s]", "idmap"))), &err));
	CHECKF(strstr(err.msg, "mounts[0]") && strstr(err.msg, "bind"), "%s", err.msg);
	bundle_remove(&b);
}
