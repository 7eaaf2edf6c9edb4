#!/usr/bin/env python3
"""Deployment checks: the container's steps (run here, since CI has no Docker
engine), and the Helm chart (lint, schema, rendered manifests validated
against the Kubernetes schemas, the fields operators rely on, and the
rendered config accepted by the real binary). Tools come from
scripts/deploy-tools.sh."""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from harness import Failure, check  # noqa: E402

HELM = os.path.join(ROOT, ".cache", "helm", "helm")
CHART = os.path.join(ROOT, "helm", "hashgate")
FULL = os.path.join(HERE, "full-values.yaml")
BAD = os.path.join(HERE, "bad-values.yaml")
ARGS = None


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def need_tools():
    check(os.access(HELM, os.X_OK), "helm is missing: run scripts/deploy-tools.sh")
    check(os.path.isdir(os.path.join(HERE, "node_modules", "kubernetes-models")),
          "kubernetes-models is missing: run scripts/deploy-tools.sh")


def render(values=None):
    need_tools()
    argv = [HELM, "template", "farm", CHART, "--namespace", "mining"] + (["-f", values] if values else [])
    r = sh(argv)
    check(r.returncode == 0, "helm template failed: %s" % r.stderr)
    return r.stdout


def objects(text):
    """The rendered manifests as dicts, by kind (parsed with node's yaml, the same parser validation uses)."""
    js = ("import {parseAllDocuments} from 'yaml'; import {readFileSync} from 'node:fs';"
          "console.log(JSON.stringify(parseAllDocuments(readFileSync(0,'utf8')).map(d=>d.toJS()).filter(Boolean)))")
    r = sh(["node", "--input-type=module", "-e", js], input=text, cwd=HERE)
    check(r.returncode == 0, "cannot parse the rendered manifests: %s" % r.stderr)
    out = {}
    for o in json.loads(r.stdout):
        out.setdefault(o["kind"], []).append(o)
    return out


# ---------------------------------------------------------------- container


def test_runtime_libraries():
    """Every shared library of the built binary comes from a package the
    runtime stage installs (or the slim base image has)."""
    listed = set(sh(["bash", os.path.join(ROOT, "scripts", "runtime-deps.sh"), "--list"]).stdout.split())
    base = {"libc6", "libgcc-s1", "libstdc++6", "libcrypt1", "zlib1g"}
    # apt installs what a listed package depends on with it (libpq5 brings
    # Kerberos, LDAP and GnuTLS): those count as installed too.
    closure, todo = set(), list(listed)
    while todo:
        pkg = todo.pop()
        if pkg in closure:
            continue
        closure.add(pkg)
        q = sh(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", pkg])
        for alt in q.stdout.split(","):
            name = alt.split("|")[0].strip().split(" ")[0].split(":")[0]
            if name:
                todo.append(name)
    listed |= closure
    r = sh(["ldd", ARGS.hashgate])
    check(r.returncode == 0, "ldd failed: %s" % r.stderr)
    missing = []
    for line in r.stdout.splitlines():
        m = re.search(r"=> (\S+)", line)
        if not m or m.group(1) == "not":
            continue
        path = os.path.realpath(m.group(1))
        owners = None
        for candidate in (path, path.replace("/usr/lib/", "/lib/", 1)):
            q = sh(["dpkg", "-S", candidate])
            if q.returncode == 0:
                owners = {x.split(":")[0] for x in q.stdout.split(":", 1)[0].split(", ")}
                break
        if owners is None:
            if "asan" in path or "ubsan" in path:
                continue  # the sanitizer build's runtime, not shipped
            missing.append("%s (no package owns it)" % path)
        elif not owners & (listed | base):
            missing.append("%s from %s" % (path, ",".join(sorted(owners))))
    check(not missing, "libraries the runtime stage would lack: %s" % missing)
    print("runtime stage covers every library: %s" % ", ".join(sorted(listed)))


def test_dockerfile_steps():
    """Each RUN of the Dockerfile is one of the project's scripts (which CI
    runs); the scripts parse, the runtime packages exist, and the install
    step works on this build."""
    text = open(os.path.join(ROOT, "Dockerfile")).read().replace("\\\n", " ")
    runs = [l.split(None, 1)[1] for l in text.splitlines() if l.startswith("RUN ")]
    copies = {}
    for l in text.splitlines():
        if l.startswith("COPY ") and "--from" not in l:
            src, dst = l.split()[1:3]
            copies[dst] = src
            if src != ".":
                check(os.path.exists(os.path.join(ROOT, src)), "Dockerfile copies a missing file: %s" % src)
    check(len(runs) == 4, "expected 4 RUN steps, found %d: %s" % (len(runs), runs))
    for run in runs:
        argv = shlex.split(run)
        check(argv[0] == "bash" and argv[1].endswith(".sh"), "a RUN step that is not a project script: %s" % run)
        script = copies.get(argv[1], argv[1])
        check(os.path.exists(os.path.join(ROOT, script)), "RUN uses a script that is not in the repo: %s" % script)
        r = sh(["bash", "-n", os.path.join(ROOT, script)])
        check(r.returncode == 0, "%s does not parse: %s" % (script, r.stderr))
    for pkg in sh(["bash", os.path.join(ROOT, "scripts", "runtime-deps.sh"), "--list"]).stdout.split():
        r = sh(["apt-cache", "show", "--no-all-versions", pkg])
        check(r.returncode == 0 and "Package: %s" % pkg in r.stdout, "runtime package %s is not in the archive" % pkg)
    for needed in ("HEALTHCHECK", "USER 10001", "EXPOSE 3333 3443 9100", "tini", "/etc/hashgate/hashgate.yaml"):
        check(needed in text, "the Dockerfile lacks %s" % needed)
    # The install step (scripts/install.sh does this for build/release).
    dest = tempfile.mkdtemp(prefix="hashgate-install-")
    r = sh(["cmake", "--install", ARGS.build_dir, "--prefix", "/usr/local"], env=dict(os.environ, DESTDIR=dest))
    check(r.returncode == 0, "cmake --install failed: %s" % r.stderr)
    for f in ("usr/local/bin/hashgate", "usr/local/etc/hashgate/hashgate.yaml",
              "usr/local/lib/systemd/system/hashgate.service"):
        check(os.path.exists(os.path.join(dest, f)), "install did not produce %s" % f)
    r = sh([os.path.join(dest, "usr/local/bin/hashgate"), "--check-config",
            os.path.join(dest, "usr/local/etc/hashgate/hashgate.yaml")], env=dict(os.environ, HASHGATE_ADMIN_BIND="0.0.0.0:9100"))
    check(r.returncode == 0, "the installed default config does not check: %s" % r.stderr)
    print("Dockerfile: %d RUN steps, all project scripts; install step ok" % len(runs))


# ---------------------------------------------------------------- helm


def test_helm_lint():
    need_tools()
    for values in (None, FULL):
        r = sh([HELM, "lint", "--strict", CHART] + (["-f", values] if values else []))
        check(r.returncode == 0, "helm lint %s failed: %s" % (values or "(defaults)", r.stdout + r.stderr))
    print("helm lint --strict: defaults and full example pass")


def test_helm_schema_rejects_bad_values():
    need_tools()
    r = sh([HELM, "lint", CHART, "-f", BAD])
    out = r.stdout + r.stderr
    check(r.returncode != 0, "helm lint accepted values with wrong types")
    check("replicaCount: Invalid type. Expected: integer, given: string" in out, "no schema error for replicaCount: %s" % out)
    check("externalTrafficPolicy" in out, "no schema error for externalTrafficPolicy: %s" % out)
    check("proxy_protocol" in out, "no schema error for listeners[].proxy_protocol: %s" % out)
    # The chart's own checks: a grace period too short for the drain.
    r = sh([HELM, "template", "farm", CHART, "--set", "terminationGracePeriodSeconds=10"])
    check(r.returncode != 0 and "must be at least preStopSeconds + config.admin.drain_seconds + 5" in r.stderr,
          "a grace period shorter than the drain was accepted: %s" % r.stderr)
    r = sh([HELM, "template", "farm", CHART, "--set", "config.admin.bind=127.0.0.1:9100"])
    check(r.returncode != 0 and "loopback" in r.stderr, "a loopback admin bind was accepted in a pod")
    print("schema refuses wrong types; the chart refuses a short grace period and a loopback admin bind")


def test_helm_manifests_validate():
    for values in (None, FULL):
        text = render(values)
        r = sh(["node", os.path.join(HERE, "validate.mjs")], input=text, cwd=HERE)
        check(r.returncode == 0, "manifests invalid against the Kubernetes schemas (%s):\n%s" %
              (values or "defaults", r.stdout + r.stderr))
        print("%s: %s" % (os.path.basename(values) if values else "defaults", r.stdout.strip().replace("\n", "; ")))
    # The validator itself refuses a broken manifest.
    r = sh(["node", os.path.join(HERE, "validate.mjs")], cwd=HERE,
           input="apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n")
    check(r.returncode != 0, "the validator accepted a Deployment with replicas: two")


def deployment_checks(objs, full):
    dep = objs["Deployment"][0]
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(ports.get("stratum") == 3333 and ports.get("admin") == 9100, "container ports: %s" % ports)
    check(("stratum-tls" in ports) == full, "stratum-tls port presence: %s" % ports)
    check(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}, "liveness: %s" % c["livenessProbe"])
    check(c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}, "readiness: %s" % c["readinessProbe"])
    check(c["startupProbe"]["httpGet"]["path"] == "/healthz", "startup probe")
    sc, psc = c["securityContext"], pod["spec"]["securityContext"]
    check(sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and
          sc["capabilities"]["drop"] == ["ALL"], "container securityContext: %s" % sc)
    check(psc["runAsNonRoot"] is True and psc["runAsUser"] != 0, "pod securityContext: %s" % psc)
    check(c["lifecycle"]["preStop"]["exec"]["command"][0] == "/bin/sleep", "preStop: %s" % c["lifecycle"])
    cm = objs["ConfigMap"][0]["data"]["hashgate.yaml"]
    drain = 30 if full else 20
    check("drain_seconds: %d" % drain in cm, "drain_seconds not in the ConfigMap")
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    check(grace >= 5 + drain + 5, "grace period %d too short for the drain" % grace)
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    check(mounts["config"]["mountPath"] == "/etc/hashgate" and "subPath" not in mounts["config"],
          "the config must be a directory mount so updates arrive: %s" % mounts["config"])
    check("tmp" in mounts, "no writable /tmp with a read-only root filesystem")
    ann = pod["metadata"].get("annotations") or {}
    if full:  # configReload: restart
        check(re.fullmatch(r"[0-9a-f]{64}", ann.get("checksum/config", "")), "no config checksum annotation: %s" % ann)
        check("--watch-config" not in c["args"], "restart mode must not watch")
        env = {e["name"]: e for e in c["env"]}
        check(env["POOL_MAIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "pool-credentials", "key": "main"},
              "pool password not from its Secret: %s" % env.get("POOL_MAIN_PASSWORD"))
        check(mounts["tls"]["mountPath"] == "/etc/hashgate/tls", "TLS secret not mounted")
    else:
        check("checksum/config" not in ann, "watch mode should not roll pods on config change")
        check(c["args"][-2:] == ["--watch-config", "10"], "watch mode args: %s" % c["args"])
    for o in sum(objs.values(), []):
        labels = o["metadata"]["labels"]
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                  "app.kubernetes.io/managed-by"):
            check(k in labels, "%s %s lacks label %s" % (o["kind"], o["metadata"]["name"], k))


def test_helm_important_fields():
    for values, full in ((None, False), (FULL, True)):
        objs = objects(render(values))
        deployment_checks(objs, full)
        svcs = {s["metadata"]["name"]: s for s in objs["Service"]}
        stratum, metrics = svcs["farm-hashgate"], svcs["farm-hashgate-metrics"]
        check(stratum["spec"]["type"] == ("NodePort" if full else "LoadBalancer"), "service type")
        check(stratum["spec"]["externalTrafficPolicy"] == "Local", "externalTrafficPolicy must be Local")
        sports = {p["name"]: p for p in stratum["spec"]["ports"]}
        check(sports["stratum"]["port"] == 3333 and "admin" not in sports and "metrics" not in sports,
              "stratum service ports: %s" % sports)
        if full:
            check(sports["stratum"]["nodePort"] == 30333 and sports["stratum-tls"]["nodePort"] == 30443, "nodePorts")
        check(metrics["spec"]["type"] == "ClusterIP" and metrics["spec"]["ports"][0]["targetPort"] == "admin",
              "metrics service: %s" % metrics["spec"])
        check(("ServiceMonitor" in objs) == full and ("HorizontalPodAutoscaler" in objs) == full,
              "optional objects: %s" % sorted(objs))
        check(objs["PodDisruptionBudget"][0]["spec"]["minAvailable"] == (2 if full else 1), "PDB")
        if full:
            sm = objs["ServiceMonitor"][0]["spec"]
            check(sm["endpoints"][0]["port"] == "metrics" and sm["endpoints"][0]["path"] == "/metrics", "ServiceMonitor")
            check(sm["selector"]["matchLabels"]["app.kubernetes.io/component"] == "metrics", "ServiceMonitor selector")
            check("replicas" not in objs["Deployment"][0]["spec"], "with an HPA the Deployment must not set replicas")
            # The dashboard and the rules ship as they are in files/ (tested there by test_monitoring.py).
            dash = [c for c in objs["ConfigMap"] if c["metadata"]["name"] == "farm-hashgate-dashboard"]
            check(len(dash) == 1 and dash[0]["metadata"]["labels"].get("grafana_dashboard") == "1" and
                  dash[0]["metadata"]["namespace"] == "monitoring", "dashboard ConfigMap: %s" % dash)
            files = os.path.join(CHART, "files")
            check(json.loads(dash[0]["data"]["hashgate.json"]) == json.load(open(os.path.join(files, "hashgate-dashboard.json"))),
                  "the dashboard ConfigMap differs from files/hashgate-dashboard.json")
            rule = objs["PrometheusRule"][0]
            check(rule["metadata"]["labels"].get("release") == "prometheus", "PrometheusRule labels")
            alerts = open(os.path.join(files, "hashgate-alerts.yaml")).read()
            parsed = objects("kind: Rules\n" + alerts)["Rules"][0]  # the same YAML parser
            del parsed["kind"]
            check(rule["spec"] == parsed and rule["spec"]["groups"][0]["rules"],
                  "the PrometheusRule differs from files/hashgate-alerts.yaml")
        else:
            check("PrometheusRule" not in objs and len(objs["ConfigMap"]) == 1, "dashboard/rules on by default")
    print("probes, securityContext, ports, Services, PDB, HPA, ServiceMonitor, dashboard, PrometheusRule, "
          "checksum/watch, labels: as expected")


def test_helm_config_passes_check_config():
    """The ConfigMap's config is accepted by the real binary (mounted files
    and Secret-fed variables stood in for by test files and values)."""
    for values in (None, FULL):
        objs = objects(render(values))
        cfg = objs["ConfigMap"][0]["data"]["hashgate.yaml"]
        d = tempfile.mkdtemp(prefix="hashgate-helm-")
        tls = os.path.join(d, "tls")
        os.makedirs(tls)
        for name in ("tls.crt", "tls.key", "ca.crt"):
            open(os.path.join(tls, name), "w").write("stand-in for the mounted Secret\n")
        path = os.path.join(d, "hashgate.yaml")
        with open(path, "w") as f:
            f.write(cfg.replace("/etc/hashgate/tls/", tls + "/"))
        env = dict(os.environ)
        for e in objs["Deployment"][0]["spec"]["template"]["spec"]["containers"][0].get("env", []):
            env[e["name"]] = e.get("value") or "from-a-secret-0123456789"
        r = sh([ARGS.hashgate, "--check-config", path], env=env)
        check(r.returncode == 0, "hashgate --check-config refused the rendered config (%s): %s" %
              (values or "defaults", r.stderr))
        # And a broken one is refused, so this check can fail.
        with open(path, "a") as f:
            f.write("bogus_key: 1\n")
        r = sh([ARGS.hashgate, "--check-config", path], env=env)
        check(r.returncode == 1 and "bogus_key: unknown key" in r.stderr, "a bad config passed --check-config")
    print("rendered ConfigMaps pass hashgate --check-config (defaults and full example)")


def render_with(values_yaml, expect_ok=True):
    """helm template with an extra values file; (objects or None, stderr)."""
    d = tempfile.mkdtemp(prefix="hashgate-helm-values-")
    path = os.path.join(d, "values.yaml")
    with open(path, "w") as f:
        f.write(values_yaml)
    need_tools()
    r = sh([HELM, "template", "farm", CHART, "--namespace", "mining", "-f", path])
    if expect_ok:
        check(r.returncode == 0, "helm template failed: %s" % r.stderr)
    return (objects(r.stdout) if r.returncode == 0 else None), r.stdout, r.stderr


def ledger_volume(objs):
    pod = objs["Deployment"][0]["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    return vols.get("ledger"), mounts.get("ledger"), {e["name"]: e for e in pod["containers"][0].get("env", [])}


def test_helm_ledger():
    """The ledger's storage: off by default; a PersistentVolumeClaim for the
    SQLite file when asked (one replica, Recreate); the PostgreSQL URL from a
    Secret, never in the ConfigMap. Each rendering validated and its config
    accepted by hashgate --check-config."""
    objs = objects(render())
    vol, mount, env = ledger_volume(objs)
    check("PersistentVolumeClaim" not in objs and vol is None and "HASHGATE_LEDGER_URL" not in env,
          "the defaults render ledger storage: %s %s" % (sorted(objs), vol))

    # SQLite on a PVC.
    objs, text, _ = render_with("replicaCount: 1\nconfig:\n  ledger: {backend: sqlite, flush_seconds: 2}\n"
                                "ledger:\n  persistence: {enabled: true, size: 5Gi, storageClassName: fast-ssd}\n")
    pvc = objs["PersistentVolumeClaim"][0]
    check(pvc["metadata"]["name"] == "farm-hashgate-ledger" and pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
          and pvc["spec"]["accessModes"] == ["ReadWriteOnce"] and pvc["spec"]["storageClassName"] == "fast-ssd",
          "PVC: %s" % pvc)
    vol, mount, _ = ledger_volume(objs)
    check(vol == {"name": "ledger", "persistentVolumeClaim": {"claimName": "farm-hashgate-ledger"}} and
          mount["mountPath"] == "/var/lib/hashgate", "ledger volume %s mounted %s" % (vol, mount))
    dep = objs["Deployment"][0]["spec"]
    check(dep["strategy"] == {"type": "Recreate"} and dep["replicas"] == 1, "strategy with a RWO volume: %s" % dep["strategy"])
    cfg = objects("kind: Cfg\n" + objs["ConfigMap"][0]["data"]["hashgate.yaml"])["Cfg"][0]
    check(cfg["ledger"] == {"backend": "sqlite", "flush_seconds": 2, "path": "/var/lib/hashgate/ledger.db",
                            "instance": "farm-hashgate"}, "rendered ledger config: %s" % cfg["ledger"])
    validate(text, "PVC values")
    check_config(objs, "PVC values")
    # An existing claim is used as is, and no PVC is rendered.
    objs, _, _ = render_with("replicaCount: 1\nconfig:\n  ledger: {backend: sqlite}\n"
                             "ledger:\n  persistence: {enabled: true, existingClaim: ledger-disk}\n")
    check("PersistentVolumeClaim" not in objs and
          ledger_volume(objs)[0]["persistentVolumeClaim"]["claimName"] == "ledger-disk", "existingClaim")
    # SQLite without persistence: an emptyDir, so the path is writable.
    objs, _, _ = render_with("config:\n  ledger: {backend: sqlite}\n")
    check(ledger_volume(objs)[0] == {"name": "ledger", "emptyDir": {}} and "PersistentVolumeClaim" not in objs,
          "sqlite without persistence: %s" % (ledger_volume(objs)[0],))
    # A ReadWriteOnce volume with several replicas is refused.
    _, _, err = render_with("replicaCount: 2\nconfig:\n  ledger: {backend: sqlite}\n"
                            "ledger:\n  persistence: {enabled: true}\n", expect_ok=False)
    check("a ReadWriteOnce volume holds one pod" in err, "two replicas on one RWO ledger volume: %s" % err)

    # PostgreSQL: the URL from a Secret.
    objs, text, _ = render_with("config:\n  ledger: {backend: postgres, instance: fleet-a}\n"
                                "ledger:\n  postgresUrlSecret: {name: ledger-db, key: dsn}\n")
    vol, mount, env = ledger_volume(objs)
    check(env.get("HASHGATE_LEDGER_URL", {}).get("valueFrom", {}).get("secretKeyRef") == {"name": "ledger-db", "key": "dsn"},
          "ledger URL not from its Secret: %s" % env.get("HASHGATE_LEDGER_URL"))
    cm = objs["ConfigMap"][0]["data"]["hashgate.yaml"]
    cfg = objects("kind: Cfg\n" + cm)["Cfg"][0]
    check(cfg["ledger"] == {"backend": "postgres", "instance": "fleet-a", "url": "${HASHGATE_LEDGER_URL}"} and
          vol is None and "PersistentVolumeClaim" not in objs and "postgresql://" not in cm,
          "postgres config: %s, volume %s" % (cfg["ledger"], vol))
    check(objs["Deployment"][0]["spec"]["strategy"]["type"] == "RollingUpdate", "postgres keeps rolling updates")
    validate(text, "postgres values")
    check_config(objs, "postgres values", {"HASHGATE_LEDGER_URL": "postgresql://hashgate:pw@db.example:5432/ledger"})
    _, _, err = render_with("config:\n  ledger: {backend: postgres}\n", expect_ok=False)
    check("needs ledger.postgresUrlSecret.name" in err, "postgres without a URL rendered: %s" % err)
    # The schema knows the ledger's keys and bounds.
    for bad, key in (("config:\n  ledger: {backend: mysql}\n", "backend"),
                     ("config:\n  ledger: {queue_rows: 5}\n", "queue_rows"),
                     ("ledger:\n  persistence: {enabled: \"yes\"}\n", "enabled"),
                     ("ledger:\n  persistence: {size: lots}\n", "size")):
        _, _, err = render_with(bad, expect_ok=False)
        check(key in err and "schema" in err, "bad ledger values (%s) not refused by the schema: %s" % (key, err))
    print("ledger storage: none by default; PVC (5Gi, RWO, Recreate, path and instance set), existingClaim, "
          "emptyDir; postgres URL from a Secret; bad values refused")


def validate(text, what):
    r = sh(["node", os.path.join(HERE, "validate.mjs")], input=text, cwd=HERE)
    check(r.returncode == 0, "manifests invalid against the Kubernetes schemas (%s):\n%s" % (what, r.stdout + r.stderr))


def check_config(objs, what, extra_env=None):
    d = tempfile.mkdtemp(prefix="hashgate-helm-ledger-")
    path = os.path.join(d, "hashgate.yaml")
    with open(path, "w") as f:
        f.write(objs["ConfigMap"][0]["data"]["hashgate.yaml"])
    env = dict(os.environ, **(extra_env or {}))
    r = sh([ARGS.hashgate, "--check-config", path], env=env)
    check(r.returncode == 0, "hashgate --check-config refused the rendered config (%s): %s" % (what, r.stderr))


TESTS = {
    "helm_ledger": test_helm_ledger,
    "runtime_libraries": test_runtime_libraries,
    "dockerfile_steps": test_dockerfile_steps,
    "helm_lint": test_helm_lint,
    "helm_schema_rejects_bad_values": test_helm_schema_rejects_bad_values,
    "helm_manifests_validate": test_helm_manifests_validate,
    "helm_important_fields": test_helm_important_fields,
    "helm_config_passes_check_config": test_helm_config_passes_check_config,
}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--hashgate", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("names", nargs="*")
    ARGS = ap.parse_args()
    failed = 0
    for name in ARGS.names or list(TESTS):
        try:
            TESTS[name]()
            print("PASS %s" % name)
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
