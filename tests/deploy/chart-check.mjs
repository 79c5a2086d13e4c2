// chart-check.mjs: the checks behind chart-check.sh (which installs the tools
// and passes their paths). Usage:
//   node chart-check.mjs --helm PATH --modules DIR --chart DIR [--verbose]
// Each check is one assertion; failures are printed with what was found.
// Sections: lint; one render per value set (schema validation, then wiring);
// values that the schema must refuse; NOTES.txt; values.yaml against
// values.schema.json and README.md; generated tokens kept on upgrade; scaling
// changing nothing but replicas; finally mutations, copies of the chart
// broken on purpose, each of which some check must catch.

import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync,
    writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";

const args = { verbose: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === "--verbose") args.verbose = true;
  else if (["--helm", "--modules", "--chart"].includes(a))
    args[a.slice(2)] = process.argv[++i];
  else { console.error(`chart-check: unknown argument ${a}`); process.exit(2); }
}
for (const k of ["helm", "modules", "chart"])
  if (!args[k]) { console.error(`chart-check: --${k} is required`); process.exit(2); }

const require = createRequire(join(args.modules, "package.json"));
const yaml = require("js-yaml");

/* ---- Counting ---- */

let passed = 0, failed = 0;
// When `sink` is set (mutations), results go there instead of the totals.
// With `baseline` set too, the first failure not in it ends the run (Caught):
// one is all a mutation needs.
let sink = null, baseline = null;
class Caught extends Error {}
// The failures of the main run, as a mutation run words them: its baseline.
const mainFailures = [];

function check(name, ok, found) {
  if (sink) {
    if (ok) return ok;
    const f = `${name}${found === undefined ? "" : `: ${show(found)}`}`;
    sink.push(f);
    if (baseline && !baseline.has(f)) throw new Caught(f);
    return ok;
  }
  if (ok) { passed++; if (args.verbose) console.log(`  ok   ${name}`); }
  else {
    failed++;
    mainFailures.push(`${name}${found === undefined ? "" : `: ${show(found)}`}`);
    console.log(`  FAIL ${name}${found === undefined ? "" : `: found ${show(found)}`}`);
  }
  return ok;
}
const show = (v) => (typeof v === "string" ? v : JSON.stringify(v));
const eq = (name, got, want) => check(`${name} is ${show(want)}`, isDeepStrictEqual(got, want), got);

/* ---- Helm ---- */

function helm(argv) {
  const r = spawnSync(args.helm, argv, { encoding: "utf8", timeout: 60000 });
  return { ok: r.status === 0, out: r.stdout ?? "", err: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}
const setArgs = (set) => Object.entries(set).flatMap(([k, v]) =>
  [typeof v === "string" ? "--set-string" : "--set", `${k}=${v}`]);

/* ---- Schema validation with kubernetes-models ---- */

// apps/v1 -> kubernetes-models/apps/v1/<Kind>; the core group v1 -> v1/<Kind>.
function model(obj) {
  if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") return null;
  try { return require(`kubernetes-models/${obj.apiVersion}/${obj.kind}`)[obj.kind] ?? null; }
  catch { return null; }
}

/* ---- Value sets ---- */

// What the defaults promise; a value set overrides some of it.
const base = {
  release: "kvstore", ns: "default", fullname: "kvstore", replicas: 3,
  port: 8080, persistence: true, secret: { name: "kvstore", key: "repl-token" },
  token: null, auth: false, readAuth: false, authKey: "auth-token", authToken: null,
  volumePermissions: true, pdb: { maxUnavailable: 1 }, networkPolicy: false,
  allowedClients: false, anti: "soft", storageClassName: undefined,
  metrics: true, serviceMonitor: false, serviceType: "ClusterIP", allowedHosts: undefined,
  image: "kvstore:0.1.0", policy: "Parallel", runAs: { user: 65532, group: 65532 },
  podSC: { fsGroup: 65532, fsGroupChangePolicy: "OnRootMismatch", seccompProfile: { type: "RuntimeDefault" } },
  // The container's requests when resources is empty (resourcesPreset nano).
  nano: { requests: { cpu: "50m", memory: "32Mi" } },
  // What values.yaml gives the pods; the "from values" set changes them all.
  grace: 30, claim: { accessModes: ["ReadWriteOnce"], size: "1Gi" },
  probes: {
    startupProbe: { initialDelaySeconds: 0, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 30 },
    livenessProbe: { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 },
    readinessProbe: { initialDelaySeconds: 0, periodSeconds: 5, timeoutSeconds: 1, failureThreshold: 3,
      successThreshold: 1 },
  },
  nodeSelector: undefined, tolerations: undefined, affinity: undefined, resources: undefined,
  topologySpreadConstraints: undefined,
};
// Every scheduling, resource, timing and claim value set away from its
// default, so that a template ignoring one of them fails a check.
const fromValues = {
  nodeSelector: { disktype: "ssd" },
  tolerations: [{ key: "dedicated", operator: "Equal", value: "kvstore", effect: "NoSchedule" }],
  affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [
    { matchExpressions: [{ key: "kubernetes.io/arch", operator: "In", values: ["amd64"] }] }] } } },
  resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  terminationGracePeriodSeconds: 45,
  startupProbe: { initialDelaySeconds: 1, periodSeconds: 3, timeoutSeconds: 2, failureThreshold: 20 },
  livenessProbe: { initialDelaySeconds: 2, periodSeconds: 7, timeoutSeconds: 3, failureThreshold: 4 },
  readinessProbe: { initialDelaySeconds: 3, periodSeconds: 4, timeoutSeconds: 2, failureThreshold: 5,
    successThreshold: 2 },
  persistence: { size: "5Gi", storageClass: "fast", accessModes: ["ReadWriteOncePod"] },
  topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "topology.kubernetes.io/zone",
    whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: { "app.kubernetes.io/instance": "kvstore" } } }],
};
// Everything else the issue asked for as a knob, in one value set.
const extras = {
  commonLabels: { team: "storage" }, commonAnnotations: { "example.com/owner": "storage" },
  podLabels: { tier: "db" }, podAnnotations: { "example.com/pod": "yes" }, priorityClassName: "high",
  extraEnvVarsSecret: "kvstore-env",
  extraVolumes: [{ name: "backup", persistentVolumeClaim: { claimName: "kvstore-backup" } }],
  extraVolumeMounts: [{ name: "backup", mountPath: "/backup" }],
  service: { annotations: { "example.com/lb": "internal" } },
  serviceAccount: { annotations: { "example.com/sa": "yes" } },
};
// A long release name: a 52-character fullname, the most a StatefulSet
// takes, too long for "-test-replication" within 63 unless the base is cut.
const longRelease = "team-payments-production-eu-west-1-canary-01";
const cases = [
  { name: "defaults", set: {}, want: {} },
  { name: "replicaCount=5", set: { replicaCount: 5 }, want: { replicas: 5 } },
  { name: "persistence.enabled=false", set: { "persistence.enabled": false },
    want: { persistence: false, volumePermissions: false } },
  { name: "auth.replToken=given", set: { "auth.replToken": "given" }, want: { token: "given" } },
  { name: "auth.existingSecret=mine", set: { "auth.existingSecret": "mine" },
    want: { secret: { name: "mine", key: "repl-token", existing: true } } },
  { name: "auth.enabled=true", set: { "auth.enabled": true }, want: { auth: true } },
  { name: "auth.enabled, readAuth and a given token",
    set: { "auth.enabled": true, "auth.readAuth": true, "auth.token": "client-given" },
    want: { auth: true, readAuth: true, authToken: "client-given" } },
  { name: "auth.enabled with existingSecret mine and its keys",
    set: { "auth.enabled": true, "auth.existingSecret": "mine", "auth.existingSecretAuthKey": "client",
      "auth.existingSecretReplKey": "peers" },
    want: { auth: true, authKey: "client", secret: { name: "mine", key: "peers", existing: true } } },
  { name: "volumePermissions.enabled=false", set: { "volumePermissions.enabled": false },
    want: { volumePermissions: false } },
  { name: "pdb.create=false", set: { "pdb.create": false }, want: { pdb: null } },
  { name: "pdb.create with replicaCount=1", set: { replicaCount: 1 }, want: { replicas: 1, pdb: { maxUnavailable: 1 } } },
  { name: "pdb.minAvailable=2", set: { "pdb.minAvailable": 2 }, want: { pdb: { minAvailable: 2 } } },
  { name: "pdb.maxUnavailable=50%", set: { "pdb.maxUnavailable": "50%" }, want: { pdb: { maxUnavailable: "50%" } } },
  { name: "networkPolicy.enabled=true", set: { "networkPolicy.enabled": true }, want: { networkPolicy: true } },
  { name: "podAntiAffinityPreset=hard", set: { podAntiAffinityPreset: "hard" }, want: { anti: "hard" } },
  { name: "metrics.enabled=false", set: { "metrics.enabled": false }, want: { metrics: false } },
  { name: "metrics.serviceMonitor.enabled=true", set: { "metrics.serviceMonitor.enabled": true },
    want: { serviceMonitor: true, metrics: false } },
  { name: "a ServiceMonitor in namespace monitoring, with a timeout and relabelings",
    set: { "metrics.serviceMonitor.enabled": true, "metrics.serviceMonitor.namespace": "monitoring",
      "metrics.serviceMonitor.scrapeTimeout": "10s" },
    values: { metrics: { serviceMonitor: { relabelings: [{ action: "replace", targetLabel: "cluster", replacement: "one" }],
      metricRelabelings: [{ action: "drop", sourceLabels: ["__name__"], regex: "go_.*" }] } } },
    want: { serviceMonitor: { namespace: "monitoring", scrapeTimeout: "10s", relabelings: 1, metricRelabelings: 1 },
      metrics: false } },
  { name: "release db in namespace prod", release: "db", ns: "prod", set: {},
    want: { release: "db", ns: "prod", fullname: "db-kvstore", secret: { name: "db-kvstore", key: "repl-token" } } },
  { name: "networkPolicy with allowedClients", set: { "networkPolicy.enabled": true },
    values: { networkPolicy: { allowedClients: [{ podSelector: { matchLabels: { "kvstore-client": "true" } } }] } },
    want: { networkPolicy: true, allowedClients: true, prometheus: { ns: {}, pod: { "app.kubernetes.io/name": "prometheus" } } } },
  { name: "networkPolicy with allowedClients, Prometheus in namespace monitoring",
    set: { "networkPolicy.enabled": true },
    values: { networkPolicy: { allowedClients: [{ podSelector: { matchLabels: { "kvstore-client": "true" } } }],
      // Helm merges maps with the defaults: null removes the default's key.
      metrics: { namespaceSelector: { "kubernetes.io/metadata.name": "monitoring" },
        podSelector: { "app.kubernetes.io/name": null, app: "prom" } } } },
    want: { networkPolicy: true, allowedClients: true,
      prometheus: { ns: { "kubernetes.io/metadata.name": "monitoring" }, pod: { app: "prom" } } } },
  { name: "networkPolicy with allowedClients and metrics off", set: { "networkPolicy.enabled": true, "metrics.enabled": false },
    values: { networkPolicy: { allowedClients: [{ podSelector: { matchLabels: { "kvstore-client": "true" } } }] } },
    want: { networkPolicy: true, allowedClients: true, metrics: false } },
  { name: "image.registry, repository and tag", set: { "image.registry": "registry.example.com",
    "image.repository": "team/kvstore", "image.tag": "1.2.3" }, want: { image: "registry.example.com/team/kvstore:1.2.3" } },
  { name: "image.digest replaces the tag", set: { "image.registry": "ghcr.io/", "image.tag": "1.2.3",
    "image.digest": `sha256:${"ab".repeat(32)}` }, want: { image: `ghcr.io/kvstore@sha256:${"ab".repeat(32)}` } },
  { name: "resourcesPreset=small", set: { resourcesPreset: "small" },
    want: { nano: { requests: { cpu: "250m", memory: "128Mi" }, limits: { memory: "1Gi" } } } },
  { name: "resourcesPreset=none", set: { resourcesPreset: "none" }, want: { nano: undefined } },
  { name: "service.type=NodePort", set: { "service.type": "NodePort" }, want: { serviceType: "NodePort" } },
  { name: "restricted namespace: volumePermissions off", set: { "volumePermissions.enabled": false },
    want: { volumePermissions: false } },
  { name: "OpenShift: no fixed user, group or fsGroup, volumePermissions off",
    set: { "containerSecurityContext.runAsUser": null, "containerSecurityContext.runAsGroup": null,
      "podSecurityContext.fsGroup": null, "volumePermissions.enabled": false },
    want: { volumePermissions: false, runAs: { user: undefined, group: undefined },
      podSC: { fsGroupChangePolicy: "OnRootMismatch", seccompProfile: { type: "RuntimeDefault" } } } },
  { name: "runAsUser=null with persistence off (no init container to need it)",
    set: { "containerSecurityContext.runAsUser": null, "persistence.enabled": false },
    want: { persistence: false, volumePermissions: false, runAs: { user: undefined, group: 65532 } } },
  { name: "podManagementPolicy=OrderedReady", set: { podManagementPolicy: "OrderedReady" }, want: { policy: "OrderedReady" } },
  { name: `a ${longRelease.length + 8}-character fullname (release ${longRelease})`, release: longRelease, set: {},
    want: { release: longRelease, fullname: `${longRelease}-kvstore`,
      secret: { name: `${longRelease}-kvstore`, key: "repl-token" } } },
  { name: "commonLabels, commonAnnotations, pod labels, extra env, volumes and mounts", set: {}, values: extras,
    want: { extras: true } },
  { name: "config.allowedHosts: an Ingress host and a domain", set: {},
    values: { config: { allowedHosts: ["kv.example.com", ".corp.example"] } },
    want: { allowedHosts: "kv.example.com,.corp.example" } },
  { name: "persistence.storageClass=-", set: { "persistence.storageClass": "-" }, want: { storageClassName: "" } },
  { name: "podAntiAffinityPreset=\"\"", set: { podAntiAffinityPreset: "" }, want: { anti: "" } },
  { name: "scheduling, resources, probe timings and claims from values", set: {}, values: fromValues,
    want: { nodeSelector: fromValues.nodeSelector, tolerations: fromValues.tolerations,
      affinity: fromValues.affinity, resources: fromValues.resources, grace: 45,
      topologySpreadConstraints: fromValues.topologySpreadConstraints,
      probes: { startupProbe: fromValues.startupProbe, livenessProbe: fromValues.livenessProbe,
        readinessProbe: fromValues.readinessProbe },
      claim: { accessModes: ["ReadWriteOncePod"], size: "5Gi" }, storageClassName: "fast" } },
];

// Values the schema must refuse: a typo or an unsafe value fails the install.
const refused = [
  { name: "terminationGracePeriodSeconds=0", set: { terminationGracePeriodSeconds: 0 } },
  { name: "a misspelt key (replicacount=5)", set: { replicacount: 5 } },
  { name: "podAntiAffinityPreset=medium", set: { podAntiAffinityPreset: "medium" } },
  { name: "config.fsync=sometimes", set: { "config.fsync": "sometimes" } },
  { name: "replicaCount=-1", set: { replicaCount: -1 } },
  { name: "auth.readAuth without auth.enabled", set: { "auth.readAuth": true } },
  { name: "auth.token with a space", set: { "auth.enabled": true, "auth.token": "two words" } },
  { name: "the old auth.existingSecretKey", set: { "auth.existingSecretKey": "repl-token" } },
  { name: "resourcesPreset=huge", set: { resourcesPreset: "huge" } },
  { name: "image.digest without sha256:", set: { "image.digest": "abc" } },
];

// Values the schema allows but the templates must refuse, with a message
// saying what to change (a match for it): each would break the release.
const failing = [
  { name: "pdb.minAvailable=1 with replicaCount=1 (no drain could evict it)", set: { "pdb.minAvailable": 1, replicaCount: 1 },
    msg: /pdb\.minAvailable=1 with replicaCount=1 allows no eviction/ },
  { name: "pdb.minAvailable=3 with replicaCount=3", set: { "pdb.minAvailable": 3 }, msg: /allows no eviction/ },
  { name: "pdb.minAvailable=100%", set: { "pdb.minAvailable": "100%" }, msg: /allows no eviction/ },
  { name: "pdb.maxUnavailable=0", set: { "pdb.maxUnavailable": 0 }, msg: /pdb\.maxUnavailable=0 allows no eviction/ },
  { name: "both pdb fields", set: { "pdb.minAvailable": 1, "pdb.maxUnavailable": 1 }, msg: /not both/ },
  { name: "containerSecurityContext.runAsUser=null with volumePermissions",
    set: { "containerSecurityContext.runAsUser": null }, msg: /volumePermissions\.enabled needs numeric/ },
  { name: "a 53-character StatefulSet name", release: "r", set: { fullnameOverride: "x".repeat(53) },
    msg: /StatefulSet name "x{53}" is 53 characters; over 52 its pods cannot be created/ },
];

/* ---- One render ---- */

// helm with a value set's --set flags and, when it has any, its values file.
function helmCase(argv, c) {
  let tmp = null;
  argv = [...argv, ...setArgs(c.set)];
  if (c.values) {
    tmp = mkdtempSync(join(tmpdir(), "chart-check-"));
    writeFileSync(join(tmp, "values.json"), JSON.stringify(c.values));
    argv.push("-f", join(tmp, "values.json"));
  }
  try { return helm(argv); } finally { if (tmp) rmSync(tmp, { recursive: true, force: true }); }
}

function render(chart, c) {
  const r = helmCase(["template", c.release ?? "kvstore", chart, "--namespace", c.ns ?? "default"], c);
  if (!check(`helm template renders`, r.ok, r.err.trim())) return null;
  try { return yaml.loadAll(r.out).filter((d) => d !== null && d !== undefined); }
  catch (e) { check("the render is YAML", false, e.message); return null; }
}

// Where the file a container's env var names comes from: the Secret, key
// and mount of the volume holding it, following items as the kubelet does.
function secretFile(podSpec, c, name) {
  const path = c?.env?.find((e) => e.name === name)?.value;
  if (typeof path !== "string") return null;
  const m = (c.volumeMounts ?? []).find((v) => path.startsWith(`${v.mountPath.replace(/\/$/, "")}/`));
  const sec = (podSpec.volumes ?? []).find((v) => v.name === m?.name)?.secret;
  if (!m || !sec) return { path, secret: null };
  const rel = path.slice(m.mountPath.replace(/\/$/, "").length + 1);
  const key = sec.items ? sec.items.find((i) => i.path === rel)?.key ?? null : rel;
  return { secret: sec.secretName, key, readOnly: m.readOnly === true };
}

const labelsMatch = (selector, labels) =>
  selector && Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

function checkRender(objs, w) {
  const { fullname, ns, release } = w;
  const selector = { "app.kubernetes.io/name": "kvstore", "app.kubernetes.io/instance": release };

  /* Schemas */
  for (const o of objs) {
    const id = `${o.kind}/${o.metadata?.name}`;
    if (o.kind === "ServiceMonitor") {	/* a CRD: no schema in kubernetes-models */
      eq(`${id} apiVersion`, o.apiVersion, "monitoring.coreos.com/v1");
      eq(`${id} scrapes /metrics on the http port`, o.spec?.endpoints?.map((e) => [e.port, e.path]),
        [["http", "/metrics"]]);
      continue;
    }
    const M = model(o);
    if (!check(`${id}: ${o.apiVersion} ${o.kind} is a known Kubernetes kind`, M !== null, `${o.apiVersion} ${o.kind}`))
      continue;
    let err = null;
    try { new M(o).validate(); } catch (e) { err = e.message; }
    check(`${id} validates against the ${o.apiVersion} ${o.kind} schema`, err === null, err);
  }
  // What a nil value in a printf or toYaml renders as.
  check("the render has no <nil> and no %!", !/<nil>|%!/.test(JSON.stringify(objs)),
    JSON.stringify(objs).match(/.{40}(<nil>|%!).{20}/)?.[0]);

  /* Labels and namespaces */
  for (const o of objs) {
    const id = `${o.kind}/${o.metadata?.name}`;
    const l = o.metadata?.labels ?? {};
    for (const k of ["helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
      "app.kubernetes.io/version", "app.kubernetes.io/managed-by"])
      check(`${id} has label ${k}`, typeof l[k] === "string" && l[k] !== "", l);
    check(`${id} has instance label ${release}`, l["app.kubernetes.io/instance"] === release, l);
    // A ServiceMonitor may live where Prometheus looks (metrics.serviceMonitor.namespace).
    eq(`${id} metadata.namespace`, o.metadata?.namespace,
      o.kind === "ServiceMonitor" ? w.serviceMonitor?.namespace : undefined);
    check(`${id}: name of at most 63 characters`, (o.metadata?.name ?? "").length <= 63, o.metadata?.name);
    if (w.extras) {
      eq(`${id} has the commonLabels`, l.team, "storage");
      eq(`${id} has the commonAnnotations`, o.metadata?.annotations?.["example.com/owner"], "storage");
    }
    check(`${id} has scrape annotations only on its pods`, o.kind === "StatefulSet" ||
      !JSON.stringify(o).includes("prometheus.io/"), o.metadata?.annotations);
  }

  const of = (kind) => objs.filter((o) => o.kind === kind);
  const stsList = of("StatefulSet");
  if (!eq("number of StatefulSets", stsList.length, 1)) return;
  const sts = stsList[0];
  const spec = sts.spec ?? {};
  const pod = spec.template?.spec ?? {};
  const podLabels = spec.template?.metadata?.labels ?? {};
  const services = of("Service");
  const headlessList = services.filter((s) => s.spec?.clusterIP === "None");
  const hooks = of("Pod").filter((p) => p.metadata?.annotations?.["helm.sh/hook"] === "test");

  /* Objects present */
  eq("kinds rendered", objs.map((o) => o.kind).sort(), [
    ...(w.networkPolicy ? ["NetworkPolicy"] : []), "Pod", ...(w.pdb ? ["PodDisruptionBudget"] : []),
    ...(w.secret.existing ? [] : ["Secret"]), "Service", "Service", "Service", "ServiceAccount",
    ...(w.serviceMonitor ? ["ServiceMonitor"] : []), "StatefulSet"]);
  eq("StatefulSet name", sts.metadata?.name, fullname);
  check(`StatefulSet name of at most 52 characters (kubernetes#64023)`, fullname.length <= 52, fullname);
  // Each suffix whole, even on a long name: clients and pods use these names.
  eq("Service names", services.map((s) => s.metadata?.name).sort(),
    [`${fullname}-headless`, `${fullname}-primary`, `${fullname}-read`]);
  for (const t of hooks)
    check(`test pod ${t.metadata?.name} ends in -test-replication`, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?-test-replication$/.test(
      t.metadata?.name ?? ""), t.metadata?.name);

  /* Prometheus */
  const ann = spec.template?.metadata?.annotations ?? {};
  if (w.metrics)
    eq("scrape annotations (metrics.enabled, no ServiceMonitor)", [ann["prometheus.io/scrape"], ann["prometheus.io/port"], ann["prometheus.io/path"]],
      ["true", String(w.port), "/metrics"]);
  else
    check("no scrape annotations", !JSON.stringify(ann).includes("prometheus.io/"), ann);
  for (const sm of of("ServiceMonitor")) {
    const picked = services.filter((s) => labelsMatch(sm.spec?.selector?.matchLabels, s.metadata?.labels));
    eq("the ServiceMonitor selects one Service, the headless one", picked.map((s) => s.spec?.clusterIP), ["None"]);
    const want = typeof w.serviceMonitor === "object" ? w.serviceMonitor : {};
    eq("the ServiceMonitor's namespaceSelector (the release's, when it lives elsewhere)", sm.spec?.namespaceSelector,
      want.namespace ? { matchNames: [ns] } : undefined);
    const e = sm.spec?.endpoints?.[0] ?? {};
    eq("the ServiceMonitor's interval, scrapeTimeout and relabelings",
      [e.interval, e.scrapeTimeout, e.relabelings?.length, e.metricRelabelings?.length],
      ["30s", want.scrapeTimeout, want.relabelings, want.metricRelabelings]);
  }
  eq("the ServiceMonitor and the scrape annotations are never both on (one scrape a pod)",
    of("ServiceMonitor").length > 0 && "prometheus.io/scrape" in ann, false);

  /* The headless Service and pod DNS */
  if (eq("number of headless Services (clusterIP None)", headlessList.length, 1)) {
    const h = headlessList[0];
    eq("StatefulSet serviceName (the headless Service)", spec.serviceName, h.metadata?.name);
    eq("headless Service publishNotReadyAddresses", h.spec?.publishNotReadyAddresses, true);
    eq("headless Service name (Bitnami's -headless: the release's name is for clients)", h.metadata?.name,
      `${fullname}-headless`);
    eq("pod 0 DNS name", `${sts.metadata?.name}-0.${spec.serviceName}.${ns}.svc.cluster.local`,
      `${fullname}-0.${fullname}-headless.${ns}.svc.cluster.local`);
    if (release === "kvstore" && ns === "default")
      eq("the spec's DNS name, with the headless Service's name", `${sts.metadata?.name}-0.${h.metadata?.name}.${ns}.svc.cluster.local`,
        "kvstore-0.kvstore-headless.default.svc.cluster.local");
    eq("headless Service type", h.spec?.type, "ClusterIP");
  }

  /* StatefulSet */
  eq("replicas", spec.replicas, w.replicas);
  eq("StatefulSet selector (name and instance only)", spec.selector?.matchLabels, selector);
  check("pod template labels include the selector", labelsMatch(spec.selector?.matchLabels, podLabels), podLabels);
  eq("podManagementPolicy", spec.podManagementPolicy, w.policy);
  eq("updateStrategy", spec.updateStrategy?.type, "RollingUpdate");
  eq("terminationGracePeriodSeconds", pod.terminationGracePeriodSeconds, w.grace);
  eq("nodeSelector", pod.nodeSelector, w.nodeSelector);
  eq("tolerations", pod.tolerations, w.tolerations);
  eq("topologySpreadConstraints", pod.topologySpreadConstraints, w.topologySpreadConstraints);
  if (w.extras) {
    eq("priorityClassName", pod.priorityClassName, "high");
    eq("pod labels (podLabels, commonLabels)", [podLabels.tier, podLabels.team], ["db", "storage"]);
    eq("pod annotations (podAnnotations, commonAnnotations)",
      [spec.template?.metadata?.annotations?.["example.com/pod"], spec.template?.metadata?.annotations?.["example.com/owner"]],
      ["yes", "storage"]);
    eq("extraVolumes", (pod.volumes ?? []).filter((v) => v.name === "backup"), extras.extraVolumes);
    for (const s of services.filter((x) => x.spec?.clusterIP !== "None"))
      eq(`Service/${s.metadata?.name} annotations (service.annotations and commonAnnotations)`, s.metadata?.annotations,
        { "example.com/lb": "internal", "example.com/owner": "storage" });
    eq("ServiceAccount annotations", of("ServiceAccount")[0]?.metadata?.annotations,
      { "example.com/sa": "yes", "example.com/owner": "storage" });
  }
  eq("pod automountServiceAccountToken", pod.automountServiceAccountToken, false);
  const sa = of("ServiceAccount")[0];
  eq("pod serviceAccountName", pod.serviceAccountName, sa?.metadata?.name);
  eq("ServiceAccount automountServiceAccountToken", sa?.automountServiceAccountToken, false);
  check("pod template sets no metadata.namespace", spec.template?.metadata?.namespace === undefined);

  /* The container */
  const cs = pod.containers ?? [];
  if (!eq("number of containers", cs.length, 1)) return;
  const c = cs[0];
  eq("image", c.image, w.image);
  eq("imagePullPolicy", c.imagePullPolicy, "IfNotPresent");
  check("no command or args (the binary is the entrypoint)", c.command === undefined && c.args === undefined,
    { command: c.command, args: c.args });
  const httpPort = (c.ports ?? []).find((p) => p.name === "http");
  eq("container port http", httpPort?.containerPort, w.port);
  eq("container resources (resources, else resourcesPreset's)", c.resources, w.resources ?? w.nano);
  if (w.extras) {
    eq("envFrom extraEnvVarsSecret", c.envFrom, [{ secretRef: { name: "kvstore-env" } }]);
    eq("extraVolumeMounts", (c.volumeMounts ?? []).filter((m) => m.name === "backup"), extras.extraVolumeMounts);
  }
  const portOf = (p) => (p === "http" || p === httpPort?.containerPort ? w.port : p);

  /* Services select the pods */
  // The StatefulSet controller adds the pod-name label to each pod.
  const podN = (i) => ({ ...podLabels, "statefulset.kubernetes.io/pod-name": `${sts.metadata?.name}-${i}` });
  for (const s of services) {
    const id = `Service/${s.metadata?.name}`;
    check(`${id} selector matches pod 0's labels`, labelsMatch(s.spec?.selector, podN(0)), s.spec?.selector);
    for (const p of s.spec?.ports ?? [])
      eq(`${id} port ${p.name} targets the container's http port`, portOf(p.targetPort ?? p.port), w.port);
    for (const t of hooks)
      check(`${id} does not select the helm test pod`, !labelsMatch(s.spec?.selector, t.metadata?.labels), t.metadata?.labels);
    if (s.spec?.clusterIP !== "None") eq(`${id} type`, s.spec?.type ?? "ClusterIP", w.serviceType);
  }
  const byName = (n) => services.find((s) => s.metadata?.name === n);
  const primary = byName(`${fullname}-primary`), read = byName(`${fullname}-read`);
  check(`Service ${fullname}-primary exists`, primary !== undefined, services.map((s) => s.metadata?.name));
  check(`Service ${fullname}-read exists`, read !== undefined, services.map((s) => s.metadata?.name));
  if (primary)
    eq(`${fullname}-primary selector`, primary.spec?.selector,
      { ...selector, "statefulset.kubernetes.io/pod-name": `${sts.metadata?.name}-0` });
  if (primary)
    check(`${fullname}-primary does not select pod 1`, !labelsMatch(primary.spec?.selector, podN(1)), primary.spec?.selector);
  for (const s of [read, headlessList[0]].filter(Boolean))
    check(`Service/${s.metadata?.name} selects every pod`, labelsMatch(s.spec?.selector, podN(w.replicas)), s.spec?.selector);
  if (read) {
    eq(`${fullname}-read selector`, read.spec?.selector, selector);
    eq(`${fullname}-read publishNotReadyAddresses (reads only from ready pods)`, read.spec?.publishNotReadyAddresses ?? false, false);
  }

  /* Probes */
  const probe = (p) => ({ path: p?.httpGet?.path, port: portOf(p?.httpGet?.port) });
  eq("livenessProbe", probe(c.livenessProbe), { path: "/health", port: w.port });
  eq("readinessProbe", probe(c.readinessProbe), { path: "/ready", port: w.port });
  eq("startupProbe", probe(c.startupProbe), { path: "/health", port: w.port });
  for (const [k, want] of Object.entries(w.probes)) {
    const got = Object.fromEntries(Object.keys(want).map((f) => [f, c[k]?.[f]]));
    eq(`${k} timing (from values)`, got, want);
  }

  /* Environment */
  const env = c.env ?? [];
  const envv = Object.fromEntries(env.map((e) => [e.name, e]));
  const val = (n) => envv[n]?.value;
  eq("env names are unique", new Set(env.map((e) => e.name)).size, env.length);
  eq("ROLE", val("ROLE"), "auto");
  eq("PORT", val("PORT"), String(w.port));
  const mount = (c.volumeMounts ?? []).find((m) => m.name === "data");
  check("the data volume is mounted", mount !== undefined, c.volumeMounts);
  eq("DATA_DIR (the data volume's mountPath)", val("DATA_DIR"), mount?.mountPath);
  eq("POD_NAME", envv.POD_NAME?.valueFrom?.fieldRef?.fieldPath, "metadata.name");
  eq("POD_NAMESPACE", envv.POD_NAMESPACE?.valueFrom?.fieldRef?.fieldPath, "metadata.namespace");
  check("no REPLICA_URLS (replicas register themselves)", !("REPLICA_URLS" in envv), val("REPLICA_URLS"));
  // The kubelet expands $(VAR) only for variables defined earlier in the list.
  env.forEach((e, i) => {
    for (const [, ref] of (e.value ?? "").matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g))
      check(`env ${e.name}: $(${ref}) is defined before it`, env.slice(0, i).some((d) => d.name === ref), e.value);
  });
  const expand = (s, podName) => (s ?? "").replaceAll("$(POD_NAMESPACE)", ns).replaceAll("$(POD_NAME)", podName);
  eq("PRIMARY_URL (pod 0 through the headless Service)", expand(val("PRIMARY_URL"), `${fullname}-2`),
    `http://${sts.metadata?.name}-0.${spec.serviceName}.${ns}.svc.cluster.local:${w.port}`);
  eq("ADVERTISE_URL of pod 2", expand(val("ADVERTISE_URL"), `${fullname}-2`),
    `http://${sts.metadata?.name}-2.${spec.serviceName}.${ns}.svc.cluster.local:${w.port}`);
  eq("PEERS_DNS (the headless Service, for peer discovery)", expand(val("PEERS_DNS"), `${fullname}-0`),
    `${headlessList[0]?.metadata?.name}.${ns}.svc.cluster.local.`);
  /* Tokens: files from the Secret's volume, never env values */
  const ref = secretFile(pod, c, "REPL_TOKEN_FILE");
  eq("REPL_TOKEN_FILE is the replication token, mounted read-only", ref,
    { secret: w.secret.name, key: w.secret.key, readOnly: true });
  const aref = secretFile(pod, c, "AUTH_TOKEN_FILE");
  eq("AUTH_TOKEN_FILE", aref, w.auth ? { secret: w.secret.name, key: w.authKey, readOnly: true } : null);
  eq("READ_AUTH", val("READ_AUTH"), w.auth ? String(w.readAuth) : undefined);
  for (const n of ["REPL_TOKEN", "AUTH_TOKEN"])
    check(`no ${n} in the environment (a file instead)`, !(n in envv), envv[n]);
  check("no env var takes a value from a Secret", !env.some((e) => e.valueFrom?.secretKeyRef), env);
  const secrets = of("Secret");
  if (!w.secret.existing) {
    const s = secrets.find((x) => x.metadata?.name === ref?.secret);
    check("REPL_TOKEN_FILE names the Secret the chart renders", s !== undefined, secrets.map((x) => x.metadata?.name));
    const dec = (k) => s?.data?.[k] && Buffer.from(s.data[k], "base64").toString();
    const tok = dec(ref?.key);
    if (w.token) eq("the token is auth.replToken", tok, w.token);
    else check("the generated token has 32 alphanumeric characters", /^[A-Za-z0-9]{32}$/.test(tok ?? ""), tok);
    eq("the Secret's keys", Object.keys(s?.data ?? {}).sort(), w.auth ? ["auth-token", "repl-token"] : ["repl-token"]);
    if (w.auth) {
      const atok = dec(aref?.key);
      if (w.authToken) eq("the client token is auth.token", atok, w.authToken);
      else check("the generated client token has 32 alphanumeric characters, not the replication token's",
        /^[A-Za-z0-9]{32}$/.test(atok ?? "") && atok !== tok, atok);
    }
  }
  eq("FSYNC", val("FSYNC"), "everysec");
  eq("MAX_VALUE_BYTES (an integer, not 1.048576e+06)", val("MAX_VALUE_BYTES"), "1048576");
  eq("LOG_LEVEL", val("LOG_LEVEL"), "info");
  eq("ALLOWED_HOSTS (config.allowedHosts, comma-joined; absent when empty)", val("ALLOWED_HOSTS"), w.allowedHosts);

  /* Security */
  const appSC = Object.fromEntries(Object.entries({
    runAsUser: w.runAs.user, runAsGroup: w.runAs.group, runAsNonRoot: true, readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, seccompProfile: { type: "RuntimeDefault" },
  }).filter(([, v]) => v !== undefined));
  eq("container securityContext", c.securityContext, appSC);
  eq("pod securityContext", pod.securityContext, w.podSC);
  // The restricted Pod Security Standard: everything but the root init
  // container that volumePermissions adds, which is all it lets through.
  eq("the pod meets the restricted Pod Security Standard, but for volume-permissions",
    restrictedViolations(pod, ["volume-permissions"]), []);
  eq("containers breaking the restricted Pod Security Standard",
    restrictedViolations(pod).map((v) => v.split(":")[0]).filter((v, i, a) => a.indexOf(v) === i),
    w.volumePermissions ? ["initContainer volume-permissions"] : []);

  /* volume-permissions */
  const inits = pod.initContainers ?? [];
  eq("number of init containers", inits.length, w.volumePermissions ? 1 : 0);
  if (w.volumePermissions && inits.length === 1) {
    const ic = inits[0], sc = ic.securityContext ?? {};
    eq("init container image (the app's)", ic.image, c.image);
    eq("init container runs as root", [sc.runAsUser, sc.runAsNonRoot], [0, false]);
    eq("init container capabilities", { drop: sc.capabilities?.drop, add: [...(sc.capabilities?.add ?? [])].sort() },
      { drop: ["ALL"], add: ["CHOWN", "FOWNER"] });
    eq("init container readOnlyRootFilesystem, allowPrivilegeEscalation",
      [sc.readOnlyRootFilesystem, sc.allowPrivilegeEscalation], [true, false]);
    eq("init container args", ic.args,
      ["volume-permissions", mount?.mountPath, `${c.securityContext?.runAsUser}:${c.securityContext?.runAsGroup}`]);
    eq("init container mounts data where the app does",
      (ic.volumeMounts ?? []).find((m) => m.name === "data")?.mountPath, mount?.mountPath);
    eq("init container resources", ic.resources, helperResources);
  }

  /* Storage */
  const vcts = spec.volumeClaimTemplates ?? [];
  const podVol = (pod.volumes ?? []).find((v) => v.name === "data");
  if (w.persistence) {
    eq("volumeClaimTemplates", vcts.map((v) => v.metadata?.name), ["data"]);
    const v = vcts[0]?.spec ?? {};
    eq("claim accessModes and size", { accessModes: v.accessModes, size: v.resources?.requests?.storage }, w.claim);
    eq("claim storageClassName", v.storageClassName, w.storageClassName);
    eq("claim template labels (selector labels only: immutable)", vcts[0]?.metadata?.labels, selector);
    check("no pod volume shadows the claim", podVol === undefined, podVol);
    eq("persistentVolumeClaimRetentionPolicy", spec.persistentVolumeClaimRetentionPolicy,
      { whenDeleted: "Retain", whenScaled: "Retain" });
  } else {
    eq("no volumeClaimTemplates", vcts.length, 0);
    check("an emptyDir volume named data", podVol?.emptyDir !== undefined, podVol);
  }

  /* Anti-affinity */
  const aa = pod.affinity?.podAntiAffinity;
  const term = w.anti === "soft" ? aa?.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm
    : aa?.requiredDuringSchedulingIgnoredDuringExecution?.[0];
  if (w.affinity) eq("affinity (verbatim, replacing the preset)", pod.affinity, w.affinity);
  else if (w.anti === "") eq("no affinity", pod.affinity, undefined);
  else eq(`${w.anti} pod anti-affinity on the selector labels per node`,
    [term?.topologyKey, term?.labelSelector?.matchLabels], ["kubernetes.io/hostname", selector]);

  /* helm test */
  if (eq("number of helm test pods", hooks.length, 1)) {
    const t = hooks[0], ts = t.spec ?? {};
    const rev = "rev-1", key = "_kvstore/helm-test";
    // Deleted once it succeeds, so that helm uninstall leaves no pod behind.
    eq("test pod hook-delete-policy", t.metadata?.annotations?.["helm.sh/hook-delete-policy"],
      "before-hook-creation,hook-succeeded");
    eq("test pod restartPolicy", ts.restartPolicy, "Never");
    eq("test pod securityContext (the app's)", ts.securityContext, pod.securityContext);
    eq("the test pod meets the restricted Pod Security Standard", restrictedViolations(ts), []);
    eq("test pod: init containers put, get; then the container del",
      [ts.initContainers?.map((x) => x.name), ts.containers?.map((x) => x.name)], [["put", "get"], ["del"]]);
    const [put, get] = ts.initContainers ?? [], del = ts.containers?.[0];
    // A key under the reserved prefix, removed afterwards: never the user's data.
    eq("test put args", put?.args, ["put", key, rev]);
    eq("test get args", get?.args, ["get", "--wait", "30", "--expect", rev, key]);
    eq("test del args", del?.args, ["del", key]);
    const url = (x) => x?.env?.find((e) => e.name === "KV_URL")?.value;
    eq("test put KV_URL (pod 0)", url(put), `http://${fullname}-0.${spec.serviceName}:${w.port}`);
    eq("test get KV_URL", url(get), `http://${fullname}-${w.replicas > 1 ? 1 : 0}.${spec.serviceName}:${w.port}`);
    eq("test del KV_URL (pod 0)", url(del), `http://${fullname}-0.${spec.serviceName}:${w.port}`);
    for (const x of [put, get, del]) {
      eq(`test ${x?.name} resources`, x?.resources, helperResources);
      eq(`test ${x?.name} AUTH_TOKEN_FILE (the client token only)`, secretFile(ts, x, "AUTH_TOKEN_FILE"),
        w.auth ? { secret: w.secret.name, key: w.authKey, readOnly: true } : null);
      check(`test ${x?.name} mounts no replication token`, !JSON.stringify(ts.volumes ?? []).includes(`"${w.secret.key}"`),
        ts.volumes);
      eq(`test ${x?.name} image`, x?.image, c.image);
      eq(`test ${x?.name} securityContext (the app's)`, x?.securityContext, c.securityContext);
    }
  }

  /* PodDisruptionBudget */
  for (const p of of("PodDisruptionBudget")) {
    eq("PDB selector", p.spec?.selector?.matchLabels, selector);
    const { selector: _, ...budget } = p.spec ?? {};
    eq("PDB budget", budget, w.pdb);
    // A drain evicts a pod only if the budget allows one down.
    const min = budget.minAvailable, max = budget.maxUnavailable;
    const pct = (v, n) => (typeof v === "string" ? Math.ceil((parseInt(v, 10) * n) / 100) : v);
    const down = max !== undefined ? pct(max, w.replicas) : w.replicas - pct(min, w.replicas);
    check(`PDB lets a drain evict a pod (${w.replicas} pods)`, down >= 1, budget);
  }

  /* NetworkPolicy */
  for (const np of of("NetworkPolicy")) {
    eq("NetworkPolicy podSelector", np.spec?.podSelector?.matchLabels, selector);
    const rules = np.spec?.ingress ?? [];
    check("NetworkPolicy admits the http port",
      rules.some((r) => (r.ports ?? []).some((p) => portOf(p.port) === w.port)), rules);
    const admits = (labels) => rules.some((r) => r.from === undefined ||
      r.from.some((f) => f.podSelector && !f.namespaceSelector && labelsMatch(f.podSelector.matchLabels ?? {}, labels)));
    check("NetworkPolicy admits the release's pods (replication)", admits(podLabels), rules);
    for (const t of hooks) check("NetworkPolicy admits the helm test pod", admits(t.metadata?.labels), rules);
    eq("NetworkPolicy admits a pod with no particular label", admits({ app: "stranger" }), !w.allowedClients);
    if (w.allowedClients) check("NetworkPolicy admits allowedClients", admits({ "kvstore-client": "true" }), rules);
    // Prometheus scrapes /metrics on the same port: with allowedClients it must be listed.
    const prom = rules.flatMap((r) => r.from ?? []).filter((f) => f.namespaceSelector);
    if (w.allowedClients)
      eq("NetworkPolicy lets Prometheus in (namespace and pod selectors) when it scrapes",
        prom.map((f) => [f.namespaceSelector.matchLabels, f.podSelector?.matchLabels]),
        w.prometheus ? [[w.prometheus.ns, w.prometheus.pod]] : []);
  }
}

/* ---- Values the templates refuse ---- */

function checkFailing(chart) {
  for (const f of failing) {
    const r = helmCase(["template", f.release ?? "kvstore", chart, "--namespace", "default"], f);
    check(`the render fails on ${f.name}, saying ${f.msg}`, !r.ok && f.msg.test(r.err), r.ok ? "rendered" : r.err.trim());
  }
}

/* ---- The restricted Pod Security Standard ---- */

// The rules of the restricted profile (which includes baseline) for one pod
// spec, as "container NAME: rule" lines; containers named in skip are not
// checked. ref: https://kubernetes.io/docs/concepts/security/pod-security-standards/
const RESTRICTED_VOLUMES = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
  "projected", "secret"];
function restrictedViolations(pod, skip = []) {
  const out = [], psc = pod.securityContext ?? {};
  for (const k of ["hostNetwork", "hostPID", "hostIPC"]) if (pod[k]) out.push(`pod: ${k}`);
  for (const v of pod.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== "name");
    if (!RESTRICTED_VOLUMES.includes(type)) out.push(`pod: volume ${v.name} is ${type}`);
  }
  if (psc.runAsUser === 0) out.push("pod: runAsUser 0");
  if (psc.seccompProfile && !["RuntimeDefault", "Localhost"].includes(psc.seccompProfile.type))
    out.push("pod: seccompProfile");
  for (const [kind, list] of [["initContainer", pod.initContainers], ["container", pod.containers]]) {
    for (const c of list ?? []) {
      if (skip.includes(c.name)) continue;
      const sc = c.securityContext ?? {}, id = `${kind} ${c.name}`;
      if (sc.privileged) out.push(`${id}: privileged`);
      if (sc.allowPrivilegeEscalation !== false) out.push(`${id}: allowPrivilegeEscalation is not false`);
      if (!(sc.runAsNonRoot ?? psc.runAsNonRoot)) out.push(`${id}: runAsNonRoot is not true`);
      if ((sc.runAsUser ?? psc.runAsUser) === 0) out.push(`${id}: runAsUser 0`);
      const sp = sc.seccompProfile ?? psc.seccompProfile;
      if (!["RuntimeDefault", "Localhost"].includes(sp?.type)) out.push(`${id}: seccompProfile ${sp?.type}`);
      if (!(sc.capabilities?.drop ?? []).includes("ALL")) out.push(`${id}: capabilities do not drop ALL`);
      for (const cap of sc.capabilities?.add ?? []) if (cap !== "NET_BIND_SERVICE") out.push(`${id}: adds ${cap}`);
      if ((c.ports ?? []).some((p) => p.hostPort)) out.push(`${id}: hostPort`);
    }
  }
  return out;
}

// What the short-lived containers (volume-permissions, the helm test) request.
const helperResources = { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } };

/* ---- NOTES.txt ---- */

// helm template never renders NOTES.txt, and helm install --dry-run needs a
// cluster; so a scratch copy of the chart wraps it in a ConfigMap.
function renderNotes(chart, set, extra = []) {
  const tmp = mkdtempSync(join(tmpdir(), "chart-check-notes-"));
  try {
    cpSync(chart, join(tmp, "c"), { recursive: true });
    const notes = readFileSync(join(chart, "templates", "NOTES.txt"), "utf8");
    writeFileSync(join(tmp, "c", "templates", "_notes-check.tpl"),
      `{{- define "chart-check.notes" -}}\n${notes}\n{{- end }}\n`);
    writeFileSync(join(tmp, "c", "templates", "notes-check.yaml"),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "chart-check.notes" . | toJson }}\n');
    const r = helm(["template", "kvstore", join(tmp, "c"), "--namespace", "default",
      "--show-only", "templates/notes-check.yaml", ...setArgs(set), ...extra]);
    if (!check("NOTES.txt renders", r.ok, r.err.trim())) return null;
    return yaml.load(r.out).data.notes;
  } finally { rmSync(tmp, { recursive: true, force: true }); }
}

function checkNotes(chart) {
  const d = renderNotes(chart, {});
  if (d !== null) {
    for (const s of ["kvstore-0.kvstore-headless.default.svc.cluster.local:8080  (primary)",
      "kvstore-2.kvstore-headless.default.svc.cluster.local",
      "kvstore-primary.default.svc.cluster.local:8080  writes",
      "kvstore-read.default.svc.cluster.local:8080  reads",
      "kvstore-headless.default.svc.cluster.local  headless: the per-pod names above, replication\n      and peer discovery. Not for clients",
      "Image: kvstore:0.1.0", "minikube image build -t kvstore:0.1.0 .", "kind load docker-image kvstore:0.1.0",
      "Watch the pods come up (all at once)",
      "--reset-then-reuse-values --set replicaCount=5",
      "kubectl port-forward --namespace default pod/kvstore-0 8081:8080",
      "kubectl port-forward --namespace default pod/kvstore-1 8082:8080",
      "curl -X PUT http://localhost:8081/kv/test -d \"hello\"",
      "curl http://localhost:8082/kv/test", "curl http://localhost:8081/role", "curl http://localhost:8082/role",
      "helm test kvstore", "--set replicaCount=5", "kubectl scale statefulset/kvstore",
      "kubectl port-forward --namespace default svc/kvstore-read 8080:8080",
      "then open http://localhost:8080/"])
      check(`NOTES (defaults) has "${s}"`, d.includes(s));
    check("NOTES (defaults) has no WARNING", !d.includes("WARNING"));
    check("NOTES (defaults) never recommends --reuse-values (it drops new chart defaults)",
      !/helm upgrade .* --reuse-values/.test(d), d.match(/.*--reuse-values.*/g));
  }
  const img = renderNotes(chart, { "image.registry": "registry.example.com" });
  if (img !== null) {
    check("NOTES with image.registry names the image", img.includes("Image: registry.example.com/kvstore:0.1.0"));
    check("NOTES with image.registry has no local-image hint", !img.includes("A local name"));
  }
  // Best effort: a vendor suffix in the version (GKE, EKS, OpenShift, k3s)
  // means a managed cluster, where a bare image name cannot be pulled.
  const gke = ["--kube-version", "v1.30.5-gke.1014001"];
  const managed = renderNotes(chart, {}, gke);
  if (managed !== null)
    check("NOTES warns about a local image on a managed cluster",
      managed.includes("WARNING: image kvstore:0.1.0 names no registry"), managed.match(/WARNING.*/g));
  const pushed = renderNotes(chart, { "image.registry": "registry.example.com" }, gke);
  if (pushed !== null) check("NOTES has no image WARNING with image.registry set", !pushed.includes("WARNING"));
  const a = renderNotes(chart, { "auth.enabled": true, "auth.readAuth": true });
  if (a !== null) {
    for (const s of ["export TOKEN=$(kubectl get secret --namespace default kvstore -o jsonpath='{.data.auth-token}' | base64 -d)",
      "curl -X PUT -H \"Authorization: Bearer $TOKEN\" http://localhost:8081/kv/test -d \"hello\"",
      "curl -H \"Authorization: Bearer $TOKEN\" http://localhost:8082/kv/test",
      "kubectl exec --namespace default kvstore-0 -- /kvstore put test hi"])
      check(`NOTES (auth.enabled, readAuth) has "${s}"`, a.includes(s));
    check("NOTES (auth.enabled) has no curl PUT without the token", !/curl -X PUT http/.test(a), a.match(/curl -X PUT.*/g));
  }
  for (const [set, warn] of [
    [{ "persistence.enabled": false }, "WARNING: persistence.enabled=false"],
    [{ replicaCount: 1 }, "WARNING: replicaCount=1"],
    [{ terminationGracePeriodSeconds: 5 }, "WARNING: terminationGracePeriodSeconds=5"],
    [{ "service.type": "NodePort" }, "WARNING: AUTHENTICATION IS OFF AND service.type=NodePort EXPOSES"],
    [{ "service.type": "LoadBalancer" }, "WARNING: AUTHENTICATION IS OFF AND service.type=LoadBalancer EXPOSES"]]) {
    const n = renderNotes(chart, set);
    if (n !== null) check(`NOTES with ${show(set)} warns "${warn}"`, n.includes(warn), n.match(/WARNING.*/g));
  }
  const lb = renderNotes(chart, { "service.type": "LoadBalancer", "auth.enabled": true });
  if (lb !== null) check("NOTES with a LoadBalancer and auth.enabled has no WARNING", !lb.includes("WARNING"), lb.match(/WARNING.*/g));
}

/* ---- values.yaml, values.schema.json and README.md agree ---- */

function checkDocs(chart) {
  const text = readFileSync(join(chart, "values.yaml"), "utf8");
  const values = yaml.load(text);
  const schema = JSON.parse(readFileSync(join(chart, "values.schema.json"), "utf8"));
  const readme = readFileSync(join(chart, "README.md"), "utf8");
  const params = [...text.matchAll(/^\s*## @param (\S+) \S/gm)].map((m) => m[1]);
  const at = (o, path) => path.split(".").reduce((x, k) => x?.[k], o);
  const sAt = (path) => path.split(".").reduce((x, k) => x?.properties?.[k], schema);
  // Every key of values.yaml is documented by an @param on it or on a parent map.
  const keys = [];
  const walk = (o, p) => {
    for (const [k, v] of Object.entries(o)) {
      const path = p ? `${p}.${k}` : k;
      if (params.includes(path)) continue;
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0) walk(v, path);
      else keys.push(path);
    }
  };
  walk(values, "");
  check("every values.yaml key has an @param comment", keys.length === 0, keys);
  for (const p of params) {
    check(`@param ${p} names a key of values.yaml`, at(values, p) !== undefined);
    const s = sAt(p);
    check(`schema documents ${p} (type, description)`, typeof s?.type !== "undefined" && typeof s?.description === "string");
    check(`schema default of ${p} is the values.yaml value`, isDeepStrictEqual(s?.default, at(values, p)), s?.default);
    check(`README.md lists ${p}`, readme.includes(`\`${p}\``));
  }
}

/* ---- The generated tokens are kept across upgrades ---- */

// helm template cannot reach a cluster, so lookup always finds nothing
// there. A scratch copy of the chart has the lookup replaced by what it
// returns on an upgrade, the Secret of the previous release; the tokens in it
// must come out unchanged, and values given explicitly must still win.
const LOOKUP = '(lookup "v1" "Secret" .Release.Namespace $fullname)';
const KEPT = '(dict "data" (dict "repl-token" ("kept-repl" | b64enc) "auth-token" ("kept-auth" | b64enc)))';

function checkKeptSecret(chart) {
  const tmp = mkdtempSync(join(tmpdir(), "chart-check-kept-"));
  try {
    const copy = join(tmp, "kvstore");
    cpSync(chart, copy, { recursive: true });
    const f = join(copy, "templates", "secret.yaml");
    const src = readFileSync(f, "utf8");
    if (!check(`the Secret template reads the release's Secret back with ${LOOKUP}`, src.includes(LOOKUP)))
      return;
    writeFileSync(f, src.replace(LOOKUP, KEPT));
    for (const [set, want] of [
      [{}, { "repl-token": "kept-repl" }],
      [{ "auth.enabled": true }, { "auth-token": "kept-auth", "repl-token": "kept-repl" }],
      [{ "auth.enabled": true, "auth.token": "given-auth", "auth.replToken": "given-repl" },
        { "auth-token": "given-auth", "repl-token": "given-repl" }]]) {
      const r = helm(["template", "kvstore", copy, "--namespace", "default", "--show-only", "templates/secret.yaml",
        ...setArgs(set)]);
      if (!check(`the Secret renders on an upgrade with ${show(set)}`, r.ok, r.err.trim())) continue;
      const sec = yaml.load(r.out);
      eq(`the Secret's name (the one looked up) with ${show(set)}`, sec?.metadata?.name, "kvstore");
      const got = Object.fromEntries(Object.entries(sec?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]));
      eq(`the tokens on an upgrade with ${show(set)}`, got, want);
    }
  } finally { rmSync(tmp, { recursive: true, force: true }); }
}

/* ---- Scaling rolls no pod ---- */

// `helm upgrade --set replicaCount=N` must change the StatefulSet's replicas
// and nothing else: a pod template that depended on the count would roll
// every pod, the primary included, on each scale.
function checkScaling(chart) {
  const sts = (n) => {
    const r = helm(["template", "kvstore", chart, "--namespace", "default", "--show-only", "templates/statefulset.yaml",
      "--set", `replicaCount=${n}`]);
    if (!check(`the StatefulSet renders with replicaCount=${n}`, r.ok, r.err.trim())) return null;
    const o = yaml.load(r.out);
    delete o.spec.replicas;
    return o;
  };
  const three = sts(3);
  for (const n of [1, 5]) {
    const other = sts(n);
    if (three && other)
      check(`replicaCount=${n} changes only the StatefulSet's replicas (no pod restarts)`,
        isDeepStrictEqual(other, three), "the pod template or claims differ");
  }
}

/* ---- Mutations: a broken chart must fail some check ---- */

const mutations = [
  ["headless Service without publishNotReadyAddresses", "templates/service-headless.yaml",
    "publishNotReadyAddresses: true", "publishNotReadyAddresses: false"],
  ["serviceName not the headless Service", "templates/statefulset.yaml",
    "serviceName: {{ $headless }}", "serviceName: {{ $fullname }}"],
  ["the headless Service named after the release", "templates/_helpers.tpl",
    "{{- include \"kvstore.suffixed\" (list . \"headless\") }}", "{{- include \"kvstore.fullname\" . }}"],
  ["suffixes cut on a long name", "templates/_helpers.tpl", "| trunc (int (sub 62 (len $suffix)))", "| trunc 63"],
  ["no check of the StatefulSet name's length", "templates/_helpers.tpl", "{{- if gt (len $sts) 52 }}", "{{- if false }}"],
  ["PDB minAvailable 1 by default", "templates/pdb.yaml", "maxUnavailable: {{ .Values.pdb.maxUnavailable | default 1 }}",
    "minAvailable: 1"],
  ["minAvailable >= replicaCount accepted", "templates/_helpers.tpl", "(ge (int $min) $n)", "(gt (int $min) $n)"],
  ["no resources by default", "templates/_helpers.tpl", "\"nano\" (dict \"requests\" (dict \"cpu\" \"50m\" \"memory\" \"32Mi\"))",
    "\"nano\" dict"],
  ["the init container with persistence off", "templates/statefulset.yaml",
    "{{- if and .Values.persistence.enabled .Values.volumePermissions.enabled }}", "{{- if .Values.volumePermissions.enabled }}"],
  ["runAsUser null rendered as <nil>", "templates/_helpers.tpl",
    "{{- if and .Values.persistence.enabled .Values.volumePermissions.enabled (not", "{{- if and false (not"],
  ["the main container allowed to escalate", "values.yaml", "  allowPrivilegeEscalation: false", "  allowPrivilegeEscalation: true"],
  ["the test pod left behind on success", "templates/tests/test-replication.yaml",
    "before-hook-creation,hook-succeeded", "before-hook-creation"],
  ["the test writing a user's key", "templates/tests/test-replication.yaml", "{{- $key := \"_kvstore/helm-test\" }}",
    "{{- $key := \"helm-test\" }}"],
  ["no PEERS_DNS", "templates/statefulset.yaml", "- name: PEERS_DNS", "- name: PEERS_DNS_UNUSED"],
  ["the digest ignored", "templates/_helpers.tpl", "{{- if .Values.image.digest }}", "{{- if false }}"],
  ["the registry ignored", "templates/_helpers.tpl", "{{- with .Values.image.registry }}", "{{- with false }}"],
  ["Prometheus left out of the NetworkPolicy", "templates/networkpolicy.yaml",
    "{{- if or $.Values.metrics.enabled $.Values.metrics.serviceMonitor.enabled }}", "{{- if false }}"],
  ["scrape annotations beside a ServiceMonitor", "templates/statefulset.yaml",
    "{{- if and .Values.metrics.enabled (not .Values.metrics.serviceMonitor.enabled) }}", "{{- if .Values.metrics.enabled }}"],
  ["NOTES without the AUTH warning", "templates/NOTES.txt", "WARNING: AUTHENTICATION IS OFF", "Note: authentication is off"],
  ["NOTES recommending --reuse-values", "templates/NOTES.txt", "--reset-then-reuse-values --set", "--reuse-values --set"],
  ["commonLabels ignored", "templates/_helpers.tpl", "{{- with .Values.commonLabels }}", "{{- with false }}"],
  ["readiness on /health", "templates/statefulset.yaml", "path: /ready", "path: /health"],
  ["REPLICA_URLS set statically", "templates/statefulset.yaml", "- name: PRIMARY_URL",
    "- name: REPLICA_URLS\n              value: \"http://kvstore-1.kvstore:8080\"\n            - name: PRIMARY_URL"],
  ["ADVERTISE_URL before POD_NAME", "templates/statefulset.yaml", "- name: ROLE",
    "- name: EARLY\n              value: \"$(POD_NAME)\"\n            - name: ROLE"],
  ["primary Service selecting every pod", "templates/service-primary.yaml",
    "statefulset.kubernetes.io/pod-name: {{ include \"kvstore.fullname\" . }}-0", ""],
  ["a template setting metadata.namespace", "templates/service.yaml",
    "  labels:", "  namespace: {{ .Release.Namespace }}\n  labels:"],
  ["init container with CAP_DAC_OVERRIDE", "templates/statefulset.yaml",
    "- FOWNER", "- FOWNER\n                - DAC_OVERRIDE"],
  ["replicaCount ignored", "templates/statefulset.yaml", "replicas: {{ .Values.replicaCount }}", "replicas: 3"],
  ["a bad field type (schema)", "templates/statefulset.yaml", "protocol: TCP", "protocol: [TCP]"],
  ["MAX_VALUE_BYTES as a float", "templates/statefulset.yaml", ".Values.config.maxValueBytes | int64 | quote",
    ".Values.config.maxValueBytes | quote"],
  ["test pod selected by the Services", "templates/tests/test-replication.yaml",
    "app.kubernetes.io/name: {{ printf \"%s-test\"", "app.kubernetes.io/name: {{ printf \"%s\""],
  ["emptyDir kept with persistence off", "templates/statefulset.yaml",
    "{{- if not .Values.persistence.enabled }}\n        # No claim", "{{- if false }}\n        # No claim"],
  ["AUTH_TOKEN_FILE naming the replication token", "templates/statefulset.yaml",
    "value: {{ printf \"%s/auth-token\" $tokens | quote }}", "value: {{ printf \"%s/repl-token\" $tokens | quote }}"],
  ["the client token left out of the pods' volume", "templates/statefulset.yaml",
    "              - key: {{ include \"kvstore.authTokenKey\" . }}\n                path: auth-token\n", ""],
  ["READ_AUTH ignored", "templates/statefulset.yaml", "value: {{ .Values.auth.readAuth | quote }}", "value: \"false\""],
  ["config.allowedHosts ignored", "templates/statefulset.yaml", "value: {{ join \",\" . | quote }}", "value: \"\""],
  ["REPL_TOKEN as an env value", "templates/statefulset.yaml", "- name: REPL_TOKEN_FILE\n              value: {{ printf \"%s/repl-token\" $tokens | quote }}",
    "- name: REPL_TOKEN\n              valueFrom:\n                secretKeyRef:\n                  name: {{ include \"kvstore.secretName\" . }}\n                  key: {{ include \"kvstore.replTokenKey\" . }}"],
  ["the helm test put without the token", "templates/tests/test-replication.yaml",
    "args: [\"put\", {{ $key | quote }}, {{ $value | quote }}]\n      env:\n        - name: KV_URL\n          value: {{ $primaryURL | quote }}\n        {{- if .Values.auth.enabled }}",
    "args: [\"put\", {{ $key | quote }}, {{ $value | quote }}]\n      env:\n        - name: KV_URL\n          value: {{ $primaryURL | quote }}\n        {{- if false }}"],
  ["NOTES without the token on writes", "templates/NOTES.txt", "curl -X PUT {{ $w }}http://localhost:8081", "curl -X PUT http://localhost:8081"],
  ["readAuth allowed without auth.enabled (schema)", "values.schema.json",
    "\"then\": {\n        \"properties\": {\n          \"enabled\": {\n            \"const\": true\n          }\n        }\n      }",
    "\"then\": {}"],
  ["NOTES without the replicaCount warning", "templates/NOTES.txt", "WARNING: replicaCount=", "Note: replicaCount="],
  ["schema default out of date", "values.schema.json", "\"default\": 30", "\"default\": 10"],
  ["a generated token not kept on upgrade", "templates/secret.yaml", "| default (get $kept \"repl-token\" | b64dec) ", ""],
  ["a pod template depending on replicaCount", "templates/statefulset.yaml", "- name: ROLE",
    "- name: REPLICAS\n              value: {{ .Values.replicaCount | quote }}\n            - name: ROLE"],
  ["tolerations ignored", "templates/statefulset.yaml", "{{- with .Values.tolerations }}", "{{- with false }}"],
  ["a probe timing not from values", "templates/statefulset.yaml",
    "{{- toYaml (omit .Values.readinessProbe \"enabled\") | nindent 12 }}", "periodSeconds: 5"],
];

// Every check of the sections below, cheapest first: a mutation run stops
// at the first new failure, and most are caught by the docs, the defaults'
// render or NOTES.txt.
function runAll(chart) {
  const renderCase = (c) => {
    const objs = render(chart, c);
    if (objs) checkRender(objs, { ...base, ...c.want });
  };
  checkDocs(chart);
  renderCase(cases[0]);
  checkNotes(chart);
  checkFailing(chart);
  for (const r of refused) {
    const out = helm(["template", "kvstore", chart, ...setArgs(r.set)]);
    check(`the schema refuses ${r.name}`, !out.ok && /schema/.test(out.err), out.ok ? "accepted" : out.err.trim());
  }
  cases.slice(1).forEach(renderCase);
  checkKeptSecret(chart);
  checkScaling(chart);
}

/* ---- Main ---- */

const t0 = Date.now();
const section = (s) => console.log(`chart-check: ${s}`);
const before = () => [passed, failed];
const report = (s, [p0, f0]) => section(`${s}: ${passed - p0 + failed - f0} checks, ${failed - f0} failed`);

section("helm lint --strict");
let b = before();
for (const c of cases) {
  const r = helmCase(["lint", "--strict", args.chart, "--namespace", c.ns ?? "default"], c);
  check(`helm lint --strict (${c.name})`, r.ok, (r.out + r.err).split("\n").filter((l) => /\[(ERROR|WARNING)\]|Error/.test(l)).join("; "));
}
report("lint", b);

for (const c of cases) {
  b = before();
  const w = { ...base, ...c.want };
  const objs = render(args.chart, c);
  if (objs) checkRender(objs, w);
  report(`render ${c.name} (${objs?.length ?? 0} objects)`, b);
}
b = before();
for (const r of refused) {
  const out = helm(["template", "kvstore", args.chart, ...setArgs(r.set)]);
  check(`the schema refuses ${r.name}`, !out.ok && /schema/.test(out.err), out.ok ? "accepted" : out.err.trim());
}
report("values the schema refuses", b);
b = before(); checkFailing(args.chart); report("values the templates refuse, with a message", b);
b = before(); checkNotes(args.chart); report("NOTES.txt", b);
b = before(); checkDocs(args.chart); report("values.yaml, values.schema.json, README.md", b);
b = before(); checkKeptSecret(args.chart); report("generated tokens kept on upgrade (lookup)", b);
b = before(); checkScaling(args.chart); report("scaling changes only replicas", b);

// Mutations prove the checks above can fail. Each runs every check on a
// broken copy, which must fail a check that the intact chart passes (the
// main run above did the same checks on it).
b = before();
baseline = new Set(mainFailures);
for (const [name, file, from, to] of mutations) {
  const tmp = mkdtempSync(join(tmpdir(), "chart-check-mut-"));
  const copy = join(tmp, "kvstore");
  try {
    cpSync(args.chart, copy, { recursive: true });
    const f = join(copy, file);
    const src = existsSync(f) ? readFileSync(f, "utf8") : "";
    if (!check(`mutation "${name}" applies to ${file}`, src.includes(from), from)) continue;
    writeFileSync(f, src.replace(from, to));
    sink = [];
    try { runAll(copy); } catch (e) { if (!(e instanceof Caught)) throw e; }
    const caught = sink.filter((f) => !baseline.has(f));
    sink = null;
    check(`mutation "${name}" is caught`, caught.length > 0, "every check passed");
    if (args.verbose && caught.length) console.log(`       first: ${caught[0]}`);
  } finally { sink = null; rmSync(tmp, { recursive: true, force: true }); }
}
report(`mutations (${mutations.length})`, b);

section(`finished in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`chart-check: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
