/**
 * Interop with Bouncy Castle's EST client (BC 1.72 from Debian: libbcpkix-java
 * and friends): test/interop/EstInterop.java drives BC's own ESTService
 * against this server (cacerts, csrattrs, simpleenroll with the 401 Basic
 * challenge, simplereenroll over mTLS with the same key and with a new key,
 * serverkeygen), label-less and under a label. The driver checks what BC sees;
 * this test then checks the server's side: the stored certificates, their
 * lineage (only the newest stays valid) and the keys.
 *
 * Without java, javac or the jars the test skips, except under CI=true where
 * it fails (.ci/run installs them).
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, test, type TestContext } from "node:test";
import { parseCertificate, pemDecodeAll, type ParsedCertificate } from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { tempDir } from "../../test-support.js";
import { estServer } from "./test-kit.js";

const run = promisify(execFile);
const DRIVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../../test/interop/EstInterop.java");
const JARS = ["bcprov", "bcpkix", "bcutil", "bctls"].map((n) => `/usr/share/java/${n}.jar`);
const CLASSPATH = JARS.join(":");
const LABEL = "factory";

let server: RunningServer | undefined;
let user: string;
let password: string;
let dir: string;
let classes: string;
let anchors: string;
/** Why the interop cannot run here, or undefined. */
let unavailable: string | undefined;

/** Which of java, javac and the BC jars is missing, or undefined when all are there. */
async function missingTools(): Promise<string | undefined> {
  const missing: string[] = [];
  for (const tool of ["java", "javac"]) {
    try {
      await run(tool, ["-version"]);
    } catch {
      missing.push(tool);
    }
  }
  missing.push(...JARS.filter((j) => !fs.existsSync(j)));
  if (missing.length === 0) return undefined;
  return `Bouncy Castle EST interop needs ${missing.join(", ")} (apt-get install default-jdk-headless libbcprov-java libbcpkix-java libbcutil-java libbctls-java)`;
}

before(async () => {
  unavailable = await missingTools();
  if (unavailable) return;
  dir = tempDir("tessera-est-bc-");
  classes = path.join(dir, "classes");
  // Compile while the server starts: one javac for both runs.
  const compiled = run("javac", ["-nowarn", "-cp", CLASSPATH, "-d", classes, DRIVER]);
  let started;
  try {
    started = await estServer((c) => {
      c.est.labels[LABEL] = { ...c.est.default };
    });
  } finally {
    await compiled.catch(() => undefined);
  }
  server = started.server;
  ({ user, password } = started);
  anchors = path.join(dir, "anchors.pem");
  fs.writeFileSync(anchors, server.authority.chainPem());
  await compiled.catch((err: { stderr?: string; message: string }) => {
    throw new Error(`javac failed: ${err.stderr ?? err.message}`);
  });
});
after(async () => {
  await server?.close(100);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Skips (or, under CI=true, fails) when the tools are missing; true when the test may go on. */
function available(t: TestContext): boolean {
  if (!unavailable) return true;
  if (process.env.CI === "true") assert.fail(`${unavailable}; CI must not skip the Bouncy Castle interop`);
  t.skip(unavailable);
  return false;
}

/** Runs the driver asynchronously (a synchronous child would block this process's server); never throws on a failing exit. */
async function driver(workDir: string, label?: string): Promise<{ code: number; out: string; err: string }> {
  const host = new URL(server!.url).port;
  const args = ["-cp", `${classes}:${CLASSPATH}`, "EstInterop", `127.0.0.1:${host}`, ...(label ? [label] : []), anchors, user, password, workDir];
  try {
    const r = await run("java", args, { encoding: "utf8", timeout: 120_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return { code: typeof err.code === "number" ? err.code : -1, out: err.stdout ?? "", err: err.stderr || err.message };
  }
}

function line(out: string, re: RegExp): RegExpMatchArray {
  const m = out.match(re);
  assert.ok(m, `no line matching ${re} in:\n${out}`);
  return m;
}

function readCert(workDir: string, name: string): ParsedCertificate {
  const blocks = pemDecodeAll(fs.readFileSync(path.join(workDir, name), "utf8"));
  assert.equal(blocks.length, 1, `${name}: one certificate`);
  return parseCertificate(blocks[0]!.der);
}

/** The issuing CA's signature checks out with Node's own X.509 code. */
function assertIssuedByCa(cert: ParsedCertificate): void {
  const issuer = new X509Certificate(server!.authority.ca.issuer.certificate.der);
  const x = new X509Certificate(cert.der);
  assert.ok(x.checkIssued(issuer) && x.verify(issuer.publicKey), `serial ${cert.serialHex} is signed by the issuing CA`);
}

async function interop(t: TestContext, label: string | undefined): Promise<void> {
  if (!available(t)) return;
  const workDir = path.join(dir, label ?? "default");
  const r = await driver(workDir, label);
  assert.equal(r.code, 0, `EstInterop exited ${r.code}:\n${r.out}\n${r.err}`);
  const s = server!;

  // What BC saw, one line per step.
  const ca = s.authority.caCertificates();
  line(r.out, new RegExp(`^ok cacerts ${ca.length} certificates$`, "m"));
  line(r.out, /^ok csrattrs none$/m);
  const enrolled = line(r.out, /^ok simpleenroll CN=(bc-device-[0-9a-f]{12}) serial ([0-9a-f]+)$/m);
  const renewed = line(r.out, /^ok simplereenroll same key, serial ([0-9a-f]+) -> ([0-9a-f]+)$/m);
  const rekeyed = line(r.out, /^ok rekey new key, serial ([0-9a-f]+) -> ([0-9a-f]+)$/m);
  const keygen = line(r.out, /^ok serverkeygen CN=(bc-keygen-[0-9a-f]{12}) (\w+) key matches, serial ([0-9a-f]+)$/m);
  line(r.out, new RegExp(`^ok done ${label ? `label ${label}` : "label-less"}$`, "m"));
  assert.doesNotMatch(r.out, /^FAIL/m);
  assert.equal(renewed[1], enrolled[2]);
  assert.equal(rekeyed[1], renewed[2]);

  // The certificates BC kept, read back independently.
  const cacerts = pemDecodeAll(fs.readFileSync(path.join(workDir, "cacerts.pem"), "utf8")).map((b) => b.der.toString("hex")).sort();
  assert.deepEqual(cacerts, ca.map((d) => d.toString("hex")).sort(), "BC's /cacerts bag is the CA's certificates");
  const c1 = readCert(workDir, "enroll.pem");
  const c2 = readCert(workDir, "reenroll.pem");
  const c3 = readCert(workDir, "rekey.pem");
  assert.deepEqual([c1.serialHex, c2.serialHex, c3.serialHex], [enrolled[2], renewed[2], rekeyed[2]]);
  assert.equal(new Set([c1.serialHex, c2.serialHex, c3.serialHex]).size, 3, "three serials");
  assert.ok(c1.subject.equals(c2.subject) && c2.subject.equals(c3.subject), "one subject throughout");
  assert.ok(c1.spki.equals(c2.spki), "renewal keeps the key");
  assert.ok(!c3.spki.equals(c2.spki), "rekey changes the key");
  for (const c of [c1, c2, c3]) assertIssuedByCa(c);

  // The store: one EST device of this label, three certificates, only the newest valid.
  const records = await Promise.all([c1, c2, c3].map((c) => s.authority.getCertificate(c.serialHex)));
  records.forEach((rec, i) => {
    assert.ok(rec, `certificate ${i + 1} is stored`);
    assert.ok(rec.der.equals([c1, c2, c3][i]!.der), `certificate ${i + 1}: stored DER is what BC received`);
    assert.equal(rec.protocol, "est");
    assert.equal(rec.subject, `CN=${enrolled[1]}`);
  });
  const deviceId = records[0]!.deviceId;
  assert.ok(deviceId, "enrolled to a device");
  assert.ok(records.every((rec) => rec!.deviceId === deviceId), "one lineage");
  assert.deepEqual(records.map((rec) => rec!.status), ["superseded", "superseded", "valid"], "only the newest certificate is valid");
  const lineage = await s.authority.listCertificates({ deviceId });
  assert.deepEqual(lineage.map((c) => c.serial).sort(), [c1.serialHex, c2.serialHex, c3.serialHex].sort(), "the device has exactly these certificates");
  assert.deepEqual(lineage.filter((c) => c.status === "valid").map((c) => c.serial), [c3.serialHex]);
  const device = await s.store.getDevice(deviceId);
  assert.equal(device?.currentSerial, c3.serialHex);
  assert.equal(device?.attributes.label, label ?? "");
  assert.notEqual(records[2]!.keyFingerprint, records[1]!.keyFingerprint, "stored key fingerprint changed on rekey");
  assert.equal(records[1]!.keyFingerprint, records[0]!.keyFingerprint);

  // serverkeygen: the key BC received belongs to the stored certificate.
  const kg = readCert(workDir, "serverkeygen.pem");
  assert.equal(kg.serialHex, keygen[3]);
  assertIssuedByCa(kg);
  const kgRecord = await s.authority.getCertificate(kg.serialHex);
  assert.equal(kgRecord?.status, "valid");
  assert.equal(kgRecord?.subject, `CN=${keygen[1]}`);
  const key = createPrivateKey(fs.readFileSync(path.join(workDir, "serverkeygen-key.pem"), "utf8"));
  assert.ok(createPublicKey(key).export({ type: "spki", format: "der" }).equals(kg.spki), "server-generated key matches its certificate");
}

test("Bouncy Castle EST client: cacerts, csrattrs, enroll, reenroll, rekey, serverkeygen (label-less)", (t) => interop(t, undefined));

test(`Bouncy Castle EST client: the same under label "${LABEL}"`, (t) => interop(t, LABEL));
