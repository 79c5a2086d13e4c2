#!/usr/bin/env node
// kubelet.mjs: runs a rendered StatefulSet with Docker the way the
// StatefulSet controller and the kubelet would, for tests without a cluster.
// Everything comes from the manifest (`helm template` output): pod names and
// hostnames, env (value, fieldRef, secretKeyRef, configMapKeyRef, $(VAR)
// expansion), args, ports, probes, security contexts, init containers,
// volumeClaimTemplates, emptyDir and Secret volumes, the headless Service's
// DNS names.
//
// A daemon (`start`) owns the pods: it runs the probes on their schedule,
// restarts dead containers (restartPolicy Always, with back-off), and keeps a
// 127.0.0.1 port-forward per container port. The other commands talk to it
// over a Unix socket in the state directory:
//
//   start --state DIR --manifest FILE [--namespace NS] [--parent-pid PID]
//   apply | scale N | wait-ready [--timeout S] | status | port POD [PORT]
//   port-forward POD LOCAL:PORT   (kubectl's: 127.0.0.1:LOCAL, fails if taken)
//   kill POD [--down S] | restart POD | logs POD | run-test-pod [--timeout S]
//   delete
//
// What it does not emulate, on purpose: one network namespace per pod (each
// container, init containers included, has its own address on the run's
// --internal network, with the pod's hostname), ClusterIP Services, and
// volume types other than claims, emptyDir and secret (it refuses those
// loudly).
//
// Mapping to Docker, as a kubelet on a hostPath-provisioned node would do it:
//   claim volume   docker volume, root-owned, no copy-up, fsGroup NOT applied
//                  (hostPath does no ownership management: kubernetes#31796)
//   emptyDir       docker volume, fsGroup applied (group, setgid, g+rwx)
//   secret         docker volume written before the container starts, laid
//                  out as the kubelet's atomic writer does (..data symlink),
//                  mode defaultMode, fsGroup applied (group, g+r); read-only
//   pod DNS        network aliases <pod>.<svc>.<ns>.svc.<domain>,
//                  <pod>.<svc> and <svc>.<ns>.svc.<domain> (shared: it
//                  resolves to every published pod), at start with
//                  publishNotReadyAddresses, otherwise only once Ready
//   port-forward   a TCP relay 127.0.0.1:<ephemeral> -> container address,
//                  because Docker publishes no ports from --internal networks

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const CLUSTER_DOMAIN = 'cluster.local';
const BACKOFF_START_S = 10;	// kubelet's crash-loop back-off: 10 s doubling
const BACKOFF_MAX_S = 300;	// to 5 min, reset after 10 min of running
const BACKOFF_RESET_S = 600;
const PROBE_BODY_MAX = 10 * 1024;	// kubelet reads at most ~10 KiB of a probe answer

// ---- Command line ----

function parseArgs(argv) {
  const opts = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const k = a.slice(2);
      if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) opts[k] = argv[++i];
      else opts[k] = true;
    } else opts._.push(a);
  }
  return opts;
}

function fail(msg) {
  process.stderr.write(`kubelet: ${msg}\n`);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function docker(args, { timeout = 120000, input } = {}) {
  return new Promise((resolve, reject) => {
    const p = execFile('docker', args, { timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message = `docker ${args.slice(0, 3).join(' ')}...: ${(stderr || err.message).trim()}`;
        err.stdout = stdout;
        err.stderr = stderr;
        reject(err);
      } else resolve(stdout);
    });
    if (input !== undefined) { p.stdin.end(input); }
  });
}

// A container's output, stdout and stderr interleaved as Docker kept them.
function dockerLogs(name) {
  return new Promise((resolve) => execFile('docker', ['logs', name], { maxBuffer: 64 << 20 },
    (e, o, er) => resolve(`${o ?? ''}${er ?? ''}`)));
}

// ---- Manifest ----

function loadManifest(file, namespace, modules) {
  const require = createRequire(path.join(modules, 'noop.js'));
  const yaml = require('js-yaml');
  const docs = yaml.loadAll(fs.readFileSync(file, 'utf8')).filter((d) => d && d.kind);
  const of = (kind) => docs.filter((d) => d.kind === kind);
  const sets = of('StatefulSet');
  if (sets.length !== 1) throw new Error(`expected one StatefulSet in ${file}, found ${sets.length}`);
  const sts = sets[0];
  const svc = of('Service').find((s) => s.metadata.name === sts.spec.serviceName);
  if (!svc) throw new Error(`StatefulSet ${sts.metadata.name}: serviceName ${sts.spec.serviceName} names no Service in the manifest`);
  if (svc.spec.clusterIP !== 'None') throw new Error(`Service ${svc.metadata.name} governs the StatefulSet but is not headless (clusterIP: None)`);
  const tests = of('Pod').filter((p) => /(^|,)\s*test(-success)?\s*(,|$)/.test(p.metadata?.annotations?.['helm.sh/hook'] ?? ''));
  return {
    namespace: sts.metadata.namespace || namespace,
    sts, svc, tests,
    secrets: Object.fromEntries(of('Secret').map((s) => [s.metadata.name, s])),
    configMaps: Object.fromEntries(of('ConfigMap').map((c) => [c.metadata.name, c])),
  };
}

function secretValue(m, ref) {
  const s = m.secrets[ref.name];
  if (s) {
    if (s.stringData && ref.key in s.stringData) return String(s.stringData[ref.key]);
    if (s.data && ref.key in s.data) return Buffer.from(s.data[ref.key], 'base64').toString();
  }
  if (ref.optional) return undefined;
  throw new Error(`secret ${ref.name} key ${ref.key} is not in the manifest (CreateContainerConfigError)`);
}

function configMapValue(m, ref) {
  const c = m.configMaps[ref.name];
  if (c?.data && ref.key in c.data) return String(c.data[ref.key]);
  if (ref.optional) return undefined;
  throw new Error(`configmap ${ref.name} key ${ref.key} is not in the manifest (CreateContainerConfigError)`);
}

// $(VAR) expansion as Kubernetes does it: only variables defined earlier in
// the list, $$ escapes, an unknown reference stays as written.
function expand(s, env) {
  return String(s).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name) => {
    if (all === '$$') return '$';
    return Object.prototype.hasOwnProperty.call(env, name) ? env[name] : all;
  });
}

function fieldRef(pod, fp) {
  const map = {
    'metadata.name': pod.name,
    'metadata.namespace': pod.namespace,
    'metadata.uid': pod.uid,
    'spec.nodeName': 'docker',
    'spec.serviceAccountName': pod.spec.serviceAccountName || 'default',
  };
  const lab = /^metadata\.labels\['(.+)'\]$/.exec(fp);
  if (lab) return pod.labels[lab[1]] ?? '';
  const ann = /^metadata\.annotations\['(.+)'\]$/.exec(fp);
  if (ann) return pod.annotations[ann[1]] ?? '';
  if (!(fp in map)) throw new Error(`fieldRef ${fp} is not emulated`);
  return map[fp];
}

function resolveEnv(m, pod, c) {
  const env = {};
  for (const from of c.envFrom ?? []) {
    const pre = from.prefix ?? '';
    const src = from.secretRef ? m.secrets[from.secretRef.name] : m.configMaps[from.configMapRef?.name];
    if (!src) {
      if ((from.secretRef ?? from.configMapRef)?.optional) continue;
      throw new Error(`envFrom names ${JSON.stringify(from)}, not in the manifest`);
    }
    for (const [k, v] of Object.entries(src.data ?? {}))
      env[pre + k] = from.secretRef ? Buffer.from(v, 'base64').toString() : String(v);
    for (const [k, v] of Object.entries(src.stringData ?? {})) env[pre + k] = String(v);
  }
  for (const e of c.env ?? []) {
    let v;
    if (e.valueFrom) {
      const vf = e.valueFrom;
      if (vf.fieldRef) v = fieldRef(pod, vf.fieldRef.fieldPath);
      else if (vf.secretKeyRef) v = secretValue(m, vf.secretKeyRef);
      else if (vf.configMapKeyRef) v = configMapValue(m, vf.configMapKeyRef);
      else throw new Error(`env ${e.name}: valueFrom ${Object.keys(vf)} is not emulated`);
      if (v === undefined) continue;
    } else v = expand(e.value ?? '', env);
    env[e.name] = v;
  }
  return env;
}

// A Secret volume's files in directory mp, as the kubelet's atomic writer
// lays them out: the files in a timestamped directory, ..data pointing at
// it, and each top-level name a symlink through ..data (so that an update
// is one rename). Each key or item a file of mode item.mode, defaultMode or
// 0644; with fsGroup, group fsGroup and g+r, as the kubelet's ownership
// management does for read-only volumes. A missing Secret or key fails the
// pod unless optional.
function writeSecretVolume(mp, m, vol, fsGroup) {
  const sv = vol.secret;
  const s = m.secrets[sv.secretName];
  if (!s && !sv.optional)
    throw new Error(`volume ${vol.name}: secret ${sv.secretName} is not in the manifest (ContainerCreating)`);
  const data = {};
  for (const [k, v] of Object.entries(s?.data ?? {})) data[k] = Buffer.from(v, 'base64');
  for (const [k, v] of Object.entries(s?.stringData ?? {})) data[k] = Buffer.from(String(v));
  const items = sv.items ?? Object.keys(data).map((k) => ({ key: k, path: k }));
  const dir = `..${new Date().toISOString().replace(/[-:.]/g, '_')}`;
  const own = (f, mode) => {
    fs.chownSync(f, 0, fsGroup ?? 0);
    fs.chmodSync(f, fsGroup !== undefined ? mode | 0o440 : mode);
  };
  fs.mkdirSync(path.join(mp, dir));
  own(path.join(mp, dir), 0o755);
  const top = new Set();
  for (const it of items) {
    if (!(it.key in data)) {
      if (sv.optional) continue;
      throw new Error(`volume ${vol.name}: secret ${sv.secretName} has no key ${it.key} (ContainerCreating)`);
    }
    if (path.isAbsolute(it.path) || it.path.split('/').includes('..'))
      throw new Error(`volume ${vol.name}: item path ${it.path} is invalid`);
    const f = path.join(mp, dir, it.path);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, data[it.key]);
    own(f, it.mode ?? sv.defaultMode ?? 0o644);
    top.add(it.path.split('/')[0]);
  }
  fs.symlinkSync(dir, path.join(mp, '..data'));
  for (const t of top) fs.symlinkSync(path.join('..data', t), path.join(mp, t));
}

// ---- Docker arguments for one container ----

function quantityBytes(q) {
  const m = /^(\d+(?:\.\d+)?)([KMGTE]i?|[kmgte])?$/.exec(String(q));
  if (!m) throw new Error(`memory quantity ${q} not understood`);
  const mult = { k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };
  return Math.round(Number(m[1]) * (m[2] ? mult[m[2]] : 1));
}

function quantityCpus(q) {
  const s = String(q);
  return s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

// The pod's and the container's security context merged (the container's
// wins), mapped to docker run flags. imageUser checks runAsNonRoot as the
// kubelet does, before the container is created.
function securityArgs(podSpec, c, imageUser) {
  const psc = podSpec.securityContext ?? {};
  const sc = c.securityContext ?? {};
  const args = [];
  const user = sc.runAsUser ?? psc.runAsUser;
  const group = sc.runAsGroup ?? psc.runAsGroup;
  if (user !== undefined) args.push('--user', group !== undefined ? `${user}:${group}` : String(user));
  const nonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
  if (nonRoot) {
    const uid = user !== undefined ? String(user) : (imageUser || '0').split(':')[0];
    if (!/^\d+$/.test(uid))
      throw new Error(`container ${c.name}: runAsNonRoot and image user "${uid}" is not numeric (CreateContainerConfigError)`);
    if (uid === '0')
      throw new Error(`container ${c.name}: runAsNonRoot and the container would run as root (CreateContainerConfigError)`);
  }
  for (const g of [psc.fsGroup, ...(psc.supplementalGroups ?? [])])
    if (g !== undefined) args.push('--group-add', String(g));
  if (sc.privileged) args.push('--privileged');
  if (sc.readOnlyRootFilesystem) args.push('--read-only');
  for (const cap of sc.capabilities?.drop ?? []) args.push('--cap-drop', cap);
  for (const cap of sc.capabilities?.add ?? []) args.push('--cap-add', cap);
  if (sc.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');
  const seccomp = sc.seccompProfile ?? psc.seccompProfile;
  if (seccomp?.type === 'Unconfined') args.push('--security-opt', 'seccomp=unconfined');
  else if (seccomp && seccomp.type !== 'RuntimeDefault')
    throw new Error(`container ${c.name}: seccompProfile ${seccomp.type} is not emulated`);
  const lim = c.resources?.limits ?? {};
  if (lim.memory) args.push('--memory', String(quantityBytes(lim.memory)));
  if (lim.cpu) args.push('--cpus', String(quantityCpus(lim.cpu)));
  return args;
}

// ---- Port-forward: 127.0.0.1 only ----

class Forward {
  constructor(target) {
    this.target = target;	// () => { host, port } or null while not running
    this.server = net.createServer((client) => {
      const t = this.target();
      if (!t) { client.destroy(); return; }
      const up = net.connect(t.port, t.host);
      client.pipe(up).pipe(client);
      const end = () => { client.destroy(); up.destroy(); };
      up.on('error', end); client.on('error', end);
      up.on('close', end); client.on('close', end);
    });
  }
  listen(local = 0) {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(local, '127.0.0.1', () => { this.port = this.server.address().port; resolve(this.port); });
    });
  }
  close() { this.server.close(); }
}

// ---- Probes ----

function probeHttp(port, get, timeoutS) {
  return new Promise((resolve) => {
    if ((get.scheme ?? 'HTTP') !== 'HTTP') { resolve({ ok: false, why: `scheme ${get.scheme} not emulated` }); return; }
    const headers = { 'User-Agent': 'kube-probe/1.31', Accept: '*/*', Connection: 'close' };
    for (const h of get.httpHeaders ?? []) headers[h.name] = h.value;
    const req = http.get({ host: '127.0.0.1', port, path: get.path ?? '/', headers, agent: false,
      timeout: timeoutS * 1000 }, (res) => {
      let n = 0;
      res.on('data', (d) => { n += d.length; if (n > PROBE_BODY_MAX) res.destroy(); });
      const done = () => resolve({ ok: res.statusCode >= 200 && res.statusCode < 400, why: `HTTP ${res.statusCode}` });
      res.on('end', done); res.on('close', done); res.on('error', done);
    });
    req.on('timeout', () => { req.destroy(); resolve({ ok: false, why: `timeout after ${timeoutS}s` }); });
    req.on('error', (e) => resolve({ ok: false, why: e.code || e.message }));
  });
}

function probeTcp(port, timeoutS) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const t = setTimeout(() => { s.destroy(); resolve({ ok: false, why: 'timeout' }); }, timeoutS * 1000);
    s.on('connect', () => { clearTimeout(t); s.destroy(); resolve({ ok: true, why: 'connected' }); });
    s.on('error', (e) => { clearTimeout(t); resolve({ ok: false, why: e.code }); });
  });
}

function probeDefaults(p) {
  return {
    initialDelaySeconds: p.initialDelaySeconds ?? 0, periodSeconds: p.periodSeconds ?? 10,
    timeoutSeconds: p.timeoutSeconds ?? 1, failureThreshold: p.failureThreshold ?? 3,
    successThreshold: p.successThreshold ?? 1,
  };
}

// ---- The daemon ----

class Daemon {
  constructor(opts) {
    this.state = opts.state;
    this.m = loadManifest(opts.manifest, opts.namespace ?? 'default', opts.modules);
    this.run = `kvdeploy-${process.pid}-${Date.now().toString(36)}`;
    this.label = `kvstore-deploy.run=${this.run}`;
    this.network = this.run;
    this.pods = new Map();	// name -> pod
    this.replicas = 0;
    this.applied = false;
    this.events = [];
    this.busy = Promise.resolve();
    this.stopping = false;
    const s = this.m.sts;
    this.name = s.metadata.name;
    this.policy = s.spec.podManagementPolicy ?? 'OrderedReady';
    this.tmpl = s.spec.template;
    this.grace = this.tmpl.spec.terminationGracePeriodSeconds ?? 30;
    this.svcName = this.m.svc.metadata.name;
    this.pnra = this.m.svc.spec.publishNotReadyAddresses === true;
  }

  log(msg) {
    const line = `${new Date().toISOString()} ${msg}`;
    this.events.push(line);
    process.stdout.write(line + '\n');
  }

  // The pod's own names, and the Service's, which lists every pod it
  // publishes (as a headless Service's A records do: PEERS_DNS).
  aliases(podName) {
    const ns = this.m.namespace;
    return [`${podName}.${this.svcName}.${ns}.svc.${CLUSTER_DOMAIN}`, `${podName}.${this.svcName}`,
      `${this.svcName}.${ns}.svc.${CLUSTER_DOMAIN}`];
  }

  dnsArgs() {
    const ns = this.m.namespace;
    return ['--dns-search', `${ns}.svc.${CLUSTER_DOMAIN}`, '--dns-search', `svc.${CLUSTER_DOMAIN}`,
      '--dns-search', CLUSTER_DOMAIN, '--dns-option', 'ndots:5'];
  }

  async init() {
    await docker(['network', 'create', '--internal', '--label', this.label, this.network]);
    this.log(`network ${this.network} (--internal)`);
    const images = new Set([...this.tmpl.spec.containers, ...(this.tmpl.spec.initContainers ?? [])].map((c) => c.image));
    this.imageUser = {};
    for (const img of [...images, ...this.m.tests.flatMap((t) => [...t.spec.containers, ...(t.spec.initContainers ?? [])].map((c) => c.image))]) {
      if (img in this.imageUser) continue;
      try {
        this.imageUser[img] = (await docker(['image', 'inspect', '-f', '{{.Config.User}}', img])).trim();
      } catch (e) {
        throw new Error(`image ${img} is not present (ErrImageNeverPull: no registry here)`);
      }
    }
  }

  // Volumes of one pod: claim templates (one docker volume per ordinal, kept
  // across pod deletion like a PVC) and the pod's own emptyDir and secret
  // volumes.
  async volumesFor(pod, claims = true) {
    const vols = {};
    for (const t of claims ? this.m.sts.spec.volumeClaimTemplates ?? [] : []) {
      const claim = `${t.metadata.name}-${pod.name}`;
      const v = `${this.run}-${claim}`;
      if (!(await docker(['volume', 'ls', '-q', '--filter', `name=^${v}$`])).trim()) {
        await docker(['volume', 'create', '--label', this.label, '--label', `kvstore-deploy.claim=${claim}`, v]);
        this.log(`${pod.name}: claim ${claim} bound to a new root-owned volume (hostPath-like: no fsGroup)`);
      }
      vols[t.metadata.name] = { name: v, kind: 'claim' };
    }
    for (const vol of pod.spec.volumes ?? []) {
      if (vol.emptyDir) {
        const v = `${this.run}-${pod.name}-${vol.name}-${pod.uid}`;
        await docker(['volume', 'create', '--label', this.label, v]);
        const fsGroup = pod.spec.securityContext?.fsGroup;
        if (fsGroup !== undefined) {
          // emptyDir supports ownership management: group fsGroup, setgid, g+rwx.
          const mp = (await docker(['volume', 'inspect', '-f', '{{.Mountpoint}}', v])).trim();
          fs.chownSync(mp, 0, fsGroup);
          fs.chmodSync(mp, 0o2777);
        }
        vols[vol.name] = { name: v, kind: 'emptyDir' };
      } else if (vol.secret) {
        const v = `${this.run}-${pod.name}-${vol.name}-${pod.uid}`;
        await docker(['volume', 'create', '--label', this.label, v]);
        const mp = (await docker(['volume', 'inspect', '-f', '{{.Mountpoint}}', v])).trim();
        writeSecretVolume(mp, this.m, vol, pod.spec.securityContext?.fsGroup);
        vols[vol.name] = { name: v, kind: 'secret' };
      } else if (!(vol.name in vols)) {
        throw new Error(`volume ${vol.name}: type ${Object.keys(vol).filter((k) => k !== 'name')} is not emulated`);
      }
    }
    return vols;
  }

  mountArgs(pod, c) {
    const args = [];
    for (const vm of c.volumeMounts ?? []) {
      const v = pod.volumes[vm.name];
      if (!v) throw new Error(`container ${c.name}: volumeMount ${vm.name} names no volume`);
      if (vm.subPath) throw new Error(`container ${c.name}: subPath is not emulated`);
      // volume-nocopy: a PV starts empty; Docker would otherwise copy the
      // image's /data (and its owner) into a new volume.
      // The kubelet mounts Secret volumes read-only whatever the mount says.
      const ro = vm.readOnly || v.kind === 'secret';
      args.push('--mount', `type=volume,src=${v.name},dst=${vm.mountPath},volume-nocopy${ro ? ',readonly' : ''}`);
    }
    return args;
  }

  containerArgs(pod, c, { name, aliases }) {
    const env = resolveEnv(this.m, pod, c);
    const args = ['--name', name, '--label', this.label, '--label', `kvstore-deploy.pod=${pod.name}`,
      '--hostname', pod.hostname, '--network', this.network, ...this.dnsArgs()];
    for (const a of aliases) args.push('--network-alias', a);
    args.push(...securityArgs(pod.spec, c, this.imageUser[c.image]));
    args.push(...this.mountArgs(pod, c));
    for (const [k, v] of Object.entries(env)) args.push('--env', `${k}=${v}`);
    const command = (c.command ?? []).map((s) => expand(s, env));
    const cargs = (c.args ?? []).map((s) => expand(s, env));
    if (command.length) args.push('--entrypoint', command[0]);
    args.push(c.image, ...command.slice(1), ...cargs);
    return args;
  }

  // Init containers one after the other, each to completion.
  async runInit(pod) {
    for (const c of pod.spec.initContainers ?? []) {
      const name = `${this.run}-${pod.name}-init-${c.name}`;
      await docker(['rm', '-f', name]).catch(() => {});
      const args = this.containerArgs(pod, c, { name, aliases: [] });
      await docker(['create', ...args]);
      let code;
      try {
        await docker(['start', '-a', name], { timeout: 300000 });
        code = 0;
      } catch (e) {
        code = Number((await docker(['inspect', '-f', '{{.State.ExitCode}}', name]).catch(() => '-1')).trim());
      }
      const out = await dockerLogs(name);
      await docker(['rm', '-f', name]).catch(() => {});
      this.log(`${pod.name}: init container ${c.name} exited ${code}${out.trim() ? `: ${out.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
      if (code !== 0) return { ok: false, container: c.name, code, out };
    }
    return { ok: true };
  }

  newPod(ordinal) {
    const name = `${this.name}-${ordinal}`;
    const spec = this.tmpl.spec;
    const labels = { ...(this.tmpl.metadata?.labels ?? {}), 'statefulset.kubernetes.io/pod-name': name,
      'apps.kubernetes.io/pod-index': String(ordinal) };
    return {
      name, ordinal, namespace: this.m.namespace, uid: Math.random().toString(16).slice(2, 10),
      hostname: name, spec, labels, annotations: this.tmpl.metadata?.annotations ?? {},
      main: spec.containers[0], container: `${this.run}-${name}`, phase: 'Pending',
      ready: false, started: false, running: false, restarts: 0, forwards: {}, ip: null,
      dnsPublished: false, generation: 0, lastStart: 0, nextStartAt: 0, stopping: false,
    };
  }

  async forward(pod, port) {
    if (!pod.forwards[port]) {
      const f = new Forward(() => (pod.running && pod.ip ? { host: pod.ip, port } : null));
      pod.forwards[port] = f;
      await f.listen();
    }
    return pod.forwards[port].port;
  }

  portNumber(pod, port) {
    if (typeof port === 'number' || /^\d+$/.test(String(port))) return Number(port);
    const p = (pod.main.ports ?? []).find((x) => x.name === port);
    if (!p) throw new Error(`${pod.name}: no container port named ${port}`);
    return p.containerPort;
  }

  async createPod(ordinal) {
    const pod = this.newPod(ordinal);
    if (pod.spec.containers.length !== 1) this.log(`${pod.name}: only the first container (${pod.main.name}) is run`);
    this.pods.set(pod.name, pod);
    this.log(`${pod.name}: created`);
    try {
      pod.volumes = await this.volumesFor(pod);
      for (const p of pod.main.ports ?? []) await this.forward(pod, p.containerPort);
      pod.phase = 'Init';
      for (;;) {
        const r = await this.runInit(pod);
        if (r.ok) break;
        pod.phase = `Init:Error (${r.container} exited ${r.code})`;
        pod.restarts++;
        const wait = Math.min(BACKOFF_START_S * 2 ** (pod.restarts - 1), BACKOFF_MAX_S);
        this.log(`${pod.name}: init back-off ${wait}s`);
        await this.sleepUnlessDeleted(pod, wait * 1000);
        if (pod.stopping) return;
      }
      pod.restarts = 0;
      const aliases = this.pnra ? this.aliases(pod.name) : [];
      pod.dnsPublished = this.pnra;
      await docker(['create', '--stop-timeout', String(this.grace),
        ...this.containerArgs(pod, pod.main, { name: pod.container, aliases })]);
      await this.startContainer(pod);
      this.kubelet(pod);
    } catch (e) {
      pod.phase = `Error: ${e.message}`;
      this.log(`${pod.name}: ${e.message}`);
    }
  }

  async sleepUnlessDeleted(pod, ms) {
    const end = Date.now() + ms;
    while (!pod.stopping && Date.now() < end) await sleep(200);
  }

  async startContainer(pod) {
    await docker(['start', pod.container]);
    pod.lastStart = Date.now();
    pod.generation++;
    pod.running = true;
    pod.started = false;
    pod.ready = false;
    pod.phase = 'Running';
    pod.ip = (await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`, pod.container])).trim();
    this.log(`${pod.name}: container started (${pod.ip}), restarts ${pod.restarts}`);
  }

  // The kubelet's loop for one pod: container state, probes, restarts.
  async kubelet(pod) {
    const c = pod.main;
    const probes = {};
    for (const k of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      if (!c[k]) continue;
      const p = c[k];
      probes[k] = { ...probeDefaults(p), spec: p, fails: 0, oks: 0, next: 0 };
      if (p.httpGet) probes[k].port = await this.forward(pod, this.portNumber(pod, p.httpGet.port));
      else if (p.tcpSocket) probes[k].port = await this.forward(pod, this.portNumber(pod, p.tcpSocket.port));
      else if (!p.exec) throw new Error(`${pod.name}: ${k} type ${Object.keys(p)} is not emulated`);
    }
    let gen = 0;
    while (!pod.stopping) {
      await sleep(100);
      if (pod.stopping) break;
      if (gen !== pod.generation) {	// a fresh start: probes begin again
        gen = pod.generation;
        for (const p of Object.values(probes)) { p.fails = 0; p.oks = 0; p.next = pod.lastStart + p.initialDelaySeconds * 1000; }
        pod.started = !probes.startupProbe;
        if (!probes.readinessProbe) this.setReady(pod, pod.started);
      }
      if (!pod.running) {
        if (pod.nextStartAt && Date.now() >= pod.nextStartAt && !pod.killing) {
          pod.nextStartAt = 0;
          pod.restarts++;
          await this.startContainer(pod).catch((e) => this.log(`${pod.name}: restart failed: ${e.message}`));
        }
        continue;
      }
      const now = Date.now();
      for (const [k, p] of Object.entries(probes)) {
        if (k !== 'startupProbe' && !pod.started) continue;
        if (k === 'startupProbe' && pod.started) continue;
        if (now < p.next) continue;
        p.next = now + p.periodSeconds * 1000;
        const g = pod.generation;
        const r = await this.probe(pod, p);
        if (g !== pod.generation || !pod.running || pod.stopping) break;
        if (r.ok) { p.oks++; p.fails = 0; } else { p.fails++; p.oks = 0; }
        if (k === 'startupProbe') {
          if (r.ok) { pod.started = true; this.log(`${pod.name}: startup probe succeeded`); for (const q of Object.values(probes)) q.next = Date.now(); if (!probes.readinessProbe) this.setReady(pod, true); }
          else if (p.fails >= p.failureThreshold) { this.log(`${pod.name}: startup probe failed ${p.fails} times (${r.why}); restarting`); await this.restartContainer(pod, true); break; }
        } else if (k === 'readinessProbe') {
          if (r.ok && p.oks >= p.successThreshold) this.setReady(pod, true);
          else if (!r.ok && p.fails >= p.failureThreshold) { if (pod.ready) this.log(`${pod.name}: readiness probe failed (${r.why})`); this.setReady(pod, false); }
        } else if (k === 'livenessProbe' && !r.ok && p.fails >= p.failureThreshold) {
          this.log(`${pod.name}: liveness probe failed ${p.fails} times (${r.why}); restarting`);
          await this.restartContainer(pod, true);
          break;
        }
      }
    }
  }

  async probe(pod, p) {
    const s = p.spec;
    if (s.httpGet) return probeHttp(p.port, s.httpGet, p.timeoutSeconds);
    if (s.tcpSocket) return probeTcp(p.port, p.timeoutSeconds);
    try {
      await docker(['exec', pod.container, ...s.exec.command], { timeout: p.timeoutSeconds * 1000 });
      return { ok: true, why: 'exit 0' };
    } catch (e) { return { ok: false, why: e.message }; }
  }

  setReady(pod, ready) {
    if (pod.ready === ready) return;
    pod.ready = ready;
    this.log(`${pod.name}: ${ready ? 'Ready' : 'not ready'}`);
    if (ready && !pod.dnsPublished) this.publishDns(pod);
  }

  // Without publishNotReadyAddresses a pod's name resolves only once it is
  // Ready: Docker sets aliases only when connecting, so reconnect.
  async publishDns(pod) {
    pod.dnsPublished = true;
    try {
      await docker(['network', 'disconnect', this.network, pod.container]);
      const args = ['network', 'connect'];
      for (const a of this.aliases(pod.name)) args.push('--alias', a);
      await docker([...args, this.network, pod.container]);
      pod.ip = (await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`, pod.container])).trim();
      this.log(`${pod.name}: DNS names published (pod Ready)`);
    } catch (e) { this.log(`${pod.name}: publishing DNS failed: ${e.message}`); }
  }

  scheduleRestart(pod, heldS) {
    const ranS = (Date.now() - pod.lastStart) / 1000;
    if (ranS > BACKOFF_RESET_S) pod.restarts = 0;
    const backoff = pod.restarts === 0 ? 0 : Math.min(BACKOFF_START_S * 2 ** (pod.restarts - 1), BACKOFF_MAX_S);
    const wait = Math.max(backoff, heldS);
    pod.nextStartAt = Date.now() + wait * 1000;
    pod.phase = heldS > backoff ? `Terminated (held down ${heldS}s)` : wait ? `CrashLoopBackOff (${wait}s)` : 'Restarting';
    if (wait) this.log(`${pod.name}: ${heldS > backoff ? 'held down' : 'back-off'} ${wait}s before restart`);
  }

  // A graceful restart (liveness failure or the restart command): SIGTERM,
  // the grace period, then the same container starts again, same volumes.
  async restartContainer(pod, counted) {
    pod.killing = true;
    this.setReady(pod, false);
    pod.running = false;
    const t0 = Date.now();
    await docker(['stop', '-t', String(this.grace), pod.container], { timeout: (this.grace + 30) * 1000 });
    const code = (await docker(['inspect', '-f', '{{.State.ExitCode}}', pod.container])).trim();
    this.log(`${pod.name}: stopped (exit ${code}) in ${Date.now() - t0} ms`);
    if (counted) pod.restarts++;
    pod.killing = false;
    await this.startContainer(pod);
    return { exit: Number(code), stopMs: Date.now() - t0 };
  }

  // The StatefulSet controller: create and delete pods in ordinal order.
  async reconcile() {
    if (!this.applied || this.stopping) return;
    const ordered = this.policy !== 'Parallel';
    const alive = [...this.pods.values()].sort((a, b) => a.ordinal - b.ordinal);
    // Scale down first, from the highest ordinal, one at a time.
    const excess = alive.filter((p) => p.ordinal >= this.replicas && !p.stopping);
    if (excess.length) {
      const victims = ordered ? [excess[excess.length - 1]] : excess;
      if (ordered && alive.some((p) => p.stopping)) return;
      await Promise.all(victims.map((p) => this.deletePod(p)));
      return;
    }
    for (let i = 0; i < this.replicas; i++) {
      const name = `${this.name}-${i}`;
      const p = this.pods.get(name);
      if (p) {
        if (ordered && !p.ready) return;	// OrderedReady: wait for it
        continue;
      }
      if (ordered && alive.some((q) => q.stopping)) return;
      if (ordered) { await this.createPod(i); return; }
      this.createPod(i);
    }
  }

  async deletePod(pod) {
    pod.stopping = true;
    this.setReady(pod, false);
    this.log(`${pod.name}: terminating (grace ${this.grace}s)`);
    const t0 = Date.now();
    await docker(['stop', '-t', String(this.grace), pod.container], { timeout: (this.grace + 30) * 1000 }).catch(() => {});
    await docker(['rm', '-f', pod.container]).catch(() => {});
    for (const f of Object.values(pod.forwards)) f.close();
    for (const v of Object.values(pod.volumes ?? {}))
      if (v.kind !== 'claim') await docker(['volume', 'rm', '-f', v.name]).catch(() => {});
    if (this.m.sts.spec.persistentVolumeClaimRetentionPolicy?.whenScaled === 'Delete')
      for (const v of Object.values(pod.volumes ?? {}))
        if (v.kind === 'claim') { await docker(['volume', 'rm', '-f', v.name]).catch(() => {}); this.log(`${pod.name}: claim deleted (whenScaled: Delete)`); }
    this.pods.delete(pod.name);
    this.log(`${pod.name}: deleted in ${Date.now() - t0} ms; claims ${this.m.sts.spec.persistentVolumeClaimRetentionPolicy?.whenScaled === 'Delete' ? 'deleted' : 'kept'}`);
  }

  // One `docker ps` for every pod, twice a second: a container that exited
  // without the emulator stopping it is restarted (restartPolicy Always). A
  // snapshot taken across one of our own restarts is ignored (generation).
  async watchLoop() {
    while (!this.stopping) {
      await sleep(500);
      const gens = new Map([...this.pods.values()].map((p) => [p.name, p.generation]));
      let out;
      try {
        out = await docker(['ps', '-a', '--filter', `label=${this.label}`, '--format', '{{.Names}} {{.State}}']);
      } catch { continue; }
      const state = new Map(out.split('\n').filter(Boolean).map((l) => l.split(' ')));
      for (const pod of this.pods.values()) {
        if (!pod.running || pod.killing || pod.stopping || gens.get(pod.name) !== pod.generation) continue;
        const st = state.get(pod.container);
        if (st === undefined || st === 'running') continue;
        pod.running = false;
        this.setReady(pod, false);
        const code = (await docker(['inspect', '-f', '{{.State.ExitCode}}', pod.container]).catch(() => '?')).trim();
        this.log(`${pod.name}: container exited ${code}`);
        this.scheduleRestart(pod, 0);
      }
    }
  }

  async controllerLoop() {
    while (!this.stopping) {
      try { await this.reconcile(); } catch (e) { this.log(`controller: ${e.message}`); }
      await sleep(200);
    }
  }

  status() {
    return {
      statefulset: this.name, replicas: this.replicas, network: this.network, policy: this.policy,
      pods: [...this.pods.values()].sort((a, b) => a.ordinal - b.ordinal).map((p) => ({
        name: p.name, phase: p.phase, ready: p.ready, restarts: p.restarts, ip: p.ip,
        port: p.forwards[p.main.ports?.[0]?.containerPort]?.port ?? null,
      })),
    };
  }

  podOr404(name) {
    const p = this.pods.get(name);
    if (!p) { const e = new Error(`no pod ${name}`); e.status = 404; throw e; }
    return p;
  }

  // The helm test pod(s): init containers, then the containers, on the run's
  // network; restartPolicy Never; activeDeadlineSeconds bounds the whole pod.
  async runTestPods(timeoutS) {
    const results = [];
    for (const t of this.m.tests) {
      const pod = {
        name: t.metadata.name, hostname: t.spec.hostname ?? t.metadata.name, namespace: this.m.namespace,
        uid: Math.random().toString(16).slice(2, 10), spec: t.spec, labels: t.metadata.labels ?? {},
        annotations: t.metadata.annotations ?? {},
      };
      pod.volumes = await this.volumesFor(pod, false);
      const deadline = Date.now() + Math.min(t.spec.activeDeadlineSeconds ?? timeoutS, timeoutS) * 1000;
      const r = { pod: pod.name, containers: [] };
      const runOne = async (c, kind) => {
        const name = `${this.run}-${pod.name}-${c.name}`;
        await docker(['rm', '-f', name]).catch(() => {});
        await docker(['create', ...this.containerArgs(pod, c, { name, aliases: [] })]);
        const left = Math.max(1000, deadline - Date.now());
        let code;
        try { await docker(['start', '-a', name], { timeout: left }); code = 0; } catch {
          await docker(['kill', name]).catch(() => {});
          code = Number((await docker(['inspect', '-f', '{{.State.ExitCode}}', name]).catch(() => '-1')).trim());
          if (Date.now() >= deadline) code = code || 124;
        }
        const logs = await dockerLogs(name);
        await docker(['rm', '-f', name]).catch(() => {});
        r.containers.push({ kind, name: c.name, exit: code, logs: logs.trim() });
        this.log(`test pod ${pod.name}: ${kind} ${c.name} exited ${code}`);
        return code;
      };
      let ok = true;
      for (const c of t.spec.initContainers ?? []) if ((await runOne(c, 'init')) !== 0) { ok = false; break; }
      if (ok) {
        const codes = await Promise.all(t.spec.containers.map((c) => runOne(c, 'container')));
        ok = codes.every((x) => x === 0);
      }
      for (const v of Object.values(pod.volumes)) if (v.kind !== 'claim') await docker(['volume', 'rm', '-f', v.name]).catch(() => {});
      r.phase = ok ? 'Succeeded' : 'Failed';
      results.push(r);
    }
    return results;
  }

  async teardown() {
    this.stopping = true;
    for (const p of this.pods.values()) { p.stopping = true; for (const f of Object.values(p.forwards)) f.close(); }
    const ids = (await docker(['ps', '-aq', '--filter', `label=${this.label}`]).catch(() => '')).split('\n').filter(Boolean);
    if (ids.length) await docker(['rm', '-f', ...ids]).catch(() => {});
    const vols = (await docker(['volume', 'ls', '-q', '--filter', `label=${this.label}`]).catch(() => '')).split('\n').filter(Boolean);
    if (vols.length) await docker(['volume', 'rm', '-f', ...vols]).catch(() => {});
    await docker(['network', 'rm', this.network]).catch(() => {});
    this.log(`deleted: ${ids.length} containers, ${vols.length} volumes, network ${this.network}`);
  }

  async handle(cmd, args) {
    switch (cmd) {
    case 'apply':
      this.replicas = this.m.sts.spec.replicas ?? 1;
      this.applied = true;
      this.log(`apply: StatefulSet ${this.name}, ${this.replicas} replicas, ${this.policy}`);
      return { replicas: this.replicas };
    case 'scale':
      this.replicas = Number(args[0]);
      if (!Number.isInteger(this.replicas) || this.replicas < 0) { const e = new Error('scale N'); e.status = 400; throw e; }
      this.log(`scale: ${this.replicas} replicas`);
      return { replicas: this.replicas };
    case 'status':
      return this.status();
    case 'events':
      return { events: this.events };
    case 'port': {
      const p = this.podOr404(args[0]);
      return { port: await this.forward(p, Number(args[1] ?? p.main.ports?.[0]?.containerPort)) };
    }
    case 'port-forward': {
      const p = this.podOr404(args[0]);
      const m = /^(\d+):(\d+)$/.exec(String(args[1] ?? ''));
      if (!m) { const e = new Error('port-forward POD LOCAL:PORT'); e.status = 400; throw e; }
      if (p.forwards[m[0]]) return { port: p.forwards[m[0]].port };
      const f = new Forward(() => (p.running && p.ip ? { host: p.ip, port: Number(m[2]) } : null));
      await f.listen(Number(m[1]));
      p.forwards[m[0]] = f;	// closed with the pod, as kubectl's ends with it
      this.log(`${p.name}: port-forward 127.0.0.1:${m[1]} -> ${m[2]}`);
      return { port: f.port };
    }
    case 'kill': {
      const p = this.podOr404(args[0]);
      const down = Number(args[1] ?? 0);
      p.killing = true;
      this.setReady(p, false);
      // Not running from here on, as restartContainer does before its stop:
      // docker kill takes some 0.3-0.9 s, and a probe that started or
      // returned meanwhile found the pod running and made it Ready again,
      // so wait-ready returned before the restart (and test b read the
      // first start's keys=0 from the log).
      p.running = false;
      await docker(['kill', '-s', 'KILL', p.container]);
      const code = (await docker(['inspect', '-f', '{{.State.ExitCode}}', p.container])).trim();
      this.log(`${p.name}: killed (SIGKILL, exit ${code})${down ? `; held down ${down}s` : ''}`);
      this.scheduleRestart(p, down);
      p.killing = false;
      return { exit: Number(code) };
    }
    case 'restart':
      return this.restartContainer(this.podOr404(args[0]), false);
    case 'logs': {
      const p = this.podOr404(args[0]);
      return { logs: await dockerLogs(p.container) };
    }
    case 'run-test-pod':
      return { pods: await this.runTestPods(Number(args[0] ?? 120)) };
    case 'delete':
      await this.teardown();
      setTimeout(() => process.exit(0), 100);
      return { deleted: true };
    default: {
      const e = new Error(`unknown command ${cmd}`);
      e.status = 400;
      throw e;
    }
    }
  }

  serve(sock) {
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', async () => {
        let out;
        let status = 200;
        try {
          const { cmd, args } = JSON.parse(body);
          out = await this.handle(cmd, args ?? []);
        } catch (e) {
          status = e.status ?? 500;
          out = { error: e.message };
        }
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(out));
      });
    });
    fs.rmSync(sock, { force: true });
    server.listen(sock);
  }
}

// ---- Client side ----

function call(state, cmd, args, timeoutMs = 600000) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: path.join(state, 'kubelet.sock'), method: 'POST', path: '/', timeout: timeoutMs },
      (res) => {
        let b = '';
        res.on('data', (d) => { b += d; });
        res.on('end', () => {
          let j;
          try { j = JSON.parse(b); } catch { j = { error: b }; }
          if (res.statusCode !== 200) reject(new Error(j.error)); else resolve(j);
        });
      });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(JSON.stringify({ cmd, args }));
  });
}

function table(st) {
  const rows = [['POD', 'READY', 'PHASE', 'RESTARTS', 'IP', '127.0.0.1 PORT']];
  for (const p of st.pods) rows.push([p.name, p.ready ? '1/1' : '0/1', p.phase, String(p.restarts), p.ip ?? '-', String(p.port ?? '-')]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd()).join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [cmd, ...args] = opts._;
  const state = opts.state ?? process.env.KUBELET_STATE;
  if (!cmd) fail('usage: kubelet.mjs --state DIR start|apply|scale N|wait-ready|status|port POD|port-forward POD LOCAL:PORT|kill POD|restart POD|logs POD|run-test-pod|delete');
  if (!state) fail('--state DIR is required');
  if (cmd === 'daemon') {
    const d = new Daemon({ state, manifest: opts.manifest, namespace: opts.namespace, modules: opts.modules });
    const parent = Number(opts['parent-pid'] ?? 0);
    const bye = async (why) => { d.log(`stopping: ${why}`); await d.teardown(); process.exit(0); };
    process.on('SIGTERM', () => bye('SIGTERM'));
    process.on('SIGINT', () => bye('SIGINT'));
    if (parent) setInterval(() => { try { process.kill(parent, 0); } catch { bye(`parent ${parent} is gone`); } }, 1000);
    try { await d.init(); } catch (e) { d.log(`init failed: ${e.message}`); await d.teardown(); process.exit(1); }
    fs.writeFileSync(path.join(state, 'run'), d.run);	// the label value of every object it makes
    d.serve(path.join(state, 'kubelet.sock'));
    d.log(`kubelet emulator ready (run ${d.run}, namespace ${d.m.namespace})`);
    d.controllerLoop();
    d.watchLoop();
    return;
  }
  if (cmd === 'start') {
    if (!opts.manifest) fail('start needs --manifest FILE');
    fs.mkdirSync(state, { recursive: true });
    const here = path.dirname(fileURLToPath(import.meta.url));
    const modules = opts.modules ?? process.env.KUBELET_MODULES ?? path.join(here, 'node_modules');
    const logFd = fs.openSync(path.join(state, 'kubelet.log'), 'a');
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'daemon', '--state', state,
      '--manifest', opts.manifest, '--namespace', opts.namespace ?? 'default', '--modules', modules,
      ...(opts['parent-pid'] ? ['--parent-pid', String(opts['parent-pid'])] : [])],
    { detached: true, stdio: ['ignore', logFd, logFd] });
    fs.writeFileSync(path.join(state, 'kubelet.pid'), String(child.pid));
    child.unref();
    for (let i = 0; i < 300; i++) {
      try { await call(state, 'status', [], 2000); console.log(`kubelet: daemon ${child.pid} up`); return; } catch { /* not yet */ }
      try { process.kill(child.pid, 0); } catch { break; }
      await sleep(100);
    }
    process.stderr.write(fs.readFileSync(path.join(state, 'kubelet.log'), 'utf8').split('\n').slice(-10).join('\n'));
    fail('the daemon did not come up');
  }
  try {
    if (cmd === 'wait-ready') {
      const until = Date.now() + Number(opts.timeout ?? 120) * 1000;
      let st;
      for (;;) {
        st = await call(state, 'status', []);
        if (st.pods.length === st.replicas && st.pods.every((p) => p.ready)) { console.log(table(st)); return; }
        if (Date.now() > until) { console.log(table(st)); fail(`not all ${st.replicas} pods Ready within ${opts.timeout ?? 120}s`); }
        await sleep(250);
      }
    }
    const r = await call(state, cmd, cmd === 'kill' ? [args[0], opts.down ?? 0] : cmd === 'run-test-pod' ? [opts.timeout ?? 120] : args);
    if (cmd === 'status') console.log(table(r));
    else if (cmd === 'port' || cmd === 'port-forward') console.log(r.port);
    else if (cmd === 'logs') process.stdout.write(r.logs);
    else if (cmd === 'events') console.log(r.events.join('\n'));
    else if (cmd === 'run-test-pod') {
      let ok = r.pods.length > 0;
      for (const p of r.pods) {
        console.log(`${p.pod}: ${p.phase}`);
        for (const c of p.containers) {
          console.log(`  ${c.kind} ${c.name}: exit ${c.exit}`);
          if (c.logs) console.log(c.logs.split('\n').map((l) => `    | ${l}`).join('\n'));
        }
        if (p.phase !== 'Succeeded') ok = false;
      }
      if (!r.pods.length) console.log('no helm test pod in the manifest');
      process.exit(ok ? 0 : 1);
    } else console.log(JSON.stringify(r));
  } catch (e) {
    fail(`${cmd}: ${e.message}`);
  }
}

main();
