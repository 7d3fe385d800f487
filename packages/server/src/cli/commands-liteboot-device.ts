/**
 * `tessera device new`: liteboot's new-device.sh (spec §9) as a device-side
 * tool. It makes a lower-case UUID, a P-256 key and a CSR
 * /O=<organization>/CN=<uuid>/OU=<ou>, enrolls it over the liteboot REST API
 * (POST /api/v1/cr, CBOR) presenting a bootstrap certificate, checks the
 * answer (Status 0, the certificate is for our key and verifies against
 * CA.crt) and writes certs/<uuid>.key and certs/<uuid>.crt. It talks HTTPS
 * only: no store, no CA key.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { randomUUID } from "node:crypto";
import { buildCsr, formatName, generateKeyPair, parseCertificate, pemEncode, serialToBigInt, spkiDer, type ParsedCertificate } from "@tessera/pki";
import { loadCertificates, splitTrust, verifyPeer } from "@tessera/mtls";
import { crRequestCbor, decodeFirstCbor } from "../protocols/liteboot/codec.js";
import { TesseraError } from "../errors.js";
import { EXIT, UsageError } from "./output.js";
import type { Invocation } from "./main.js";
import type { Command } from "./commands.js";

/** liteboot's REST port when nothing else is known (spec §1). */
const DEFAULT_SERVER = "https://localhost:1443";

function flag(inv: Invocation, name: string): string | undefined {
  const v = inv.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** The liteboot server: --server, else the configured liteboot listener (localhost for loopback and wildcard binds), else localhost:1443. */
async function serverUrl(inv: Invocation): Promise<URL> {
  let text = flag(inv, "server");
  if (text === undefined) {
    const listen = (await inv.config()).liteboot.listen;
    if (listen) {
      const local = ["0.0.0.0", "::", "127.0.0.1", "::1", "localhost"].includes(listen.host);
      const host = local ? "localhost" : listen.host.includes(":") ? `[${listen.host}]` : listen.host;
      text = `https://${host}:${listen.port}`;
    } else text = DEFAULT_SERVER;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--server: not a URL: ${text}`);
  }
  if (url.protocol !== "https:") throw new UsageError(`--server must be an https:// URL (liteboot's API needs TLS with a client certificate): ${text}`);
  return url;
}

/** One POST over a fresh TLS connection; resolves with the whole answer. */
function post(url: URL, body: Buffer, tls: { cert: string; key: string; ca: string }): Promise<{ status: number; contentType: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: "POST", headers: { "Content-Type": "application/cbor", "Content-Length": body.length }, cert: tls.cert, key: tls.key, ca: tls.ca, agent: false, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", reject);
    req.end(body);
  });
}

/** The cr answer {1: Status, 2: certificate DER} (get_cert_cbor.go's checks). */
function certificateFrom(answer: { status: number; contentType: string; body: Buffer }): ParsedCertificate {
  const text = answer.body.toString("utf8").trim().slice(0, 300);
  if (answer.status !== 200) throw new TesseraError("TESSERA_ERR_AUTH_DENIED", { message: "the liteboot server refused the request", detail: `HTTP ${answer.status}: ${text}` });
  const bad = (why: string) => new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message: "unexpected answer from the liteboot server", detail: why });
  let map: unknown;
  try {
    map = decodeFirstCbor(answer.body);
  } catch {
    throw bad(`not CBOR (${answer.contentType}): ${text}`);
  }
  if (!(map instanceof Map)) throw bad("not a CBOR map");
  const status = map.get(1);
  if (status !== 0 && status !== 0n) throw bad(`Status ${String(status)}`);
  const der = map.get(2);
  if (!(der instanceof Uint8Array)) throw bad("no certificate (key 2 is not a byte string)");
  try {
    return parseCertificate(Buffer.from(der));
  } catch (err) {
    throw bad(`unreadable certificate: ${(err as Error).message}`);
  }
}

function readBootstrapFile(dir: string, name: string): string {
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) throw new UsageError(`${file} not found: --bootstrap DIR needs BOOTSTRAP.crt, BOOTSTRAP.key and CA.crt (tessera bootstrap issue --name LINE --out DIR)`);
  return fs.readFileSync(file, "utf8");
}

const deviceNew: Command = async (inv) => {
  if (inv.args.length > 0) throw new UsageError(`device new takes no arguments (got ${inv.args.join(" ")})`);
  const bootDir = flag(inv, "bootstrap") ?? "certs";
  const cert = readBootstrapFile(bootDir, "BOOTSTRAP.crt");
  const key = readBootstrapFile(bootDir, "BOOTSTRAP.key");
  const ca = readBootstrapFile(bootDir, "CA.crt");
  const organization = flag(inv, "organization") ?? "Test Vendor";
  const ou = flag(inv, "ou") ?? "Signing";
  if (!organization.trim()) throw new UsageError("--organization must not be empty");
  if (!ou.trim()) throw new UsageError("--ou must not be empty");
  const url = await serverUrl(inv);
  const certsDir = path.join(flag(inv, "out") ?? ".", "certs");

  // new-device.sh steps 2-5: uuidgen (lower-cased), an EC P-256 key, a CSR in this subject order, its CBOR form.
  const uuid = randomUUID().toLowerCase();
  const { privateKey } = generateKeyPair("ec-p256");
  const csr = buildCsr({ subject: [{ type: "O", value: organization }, { type: "CN", value: uuid }, { type: "OU", value: ou }], privateKey });
  const endpoint = new URL("/api/v1/cr", url);
  let answer: Awaited<ReturnType<typeof post>>;
  try {
    answer = await post(endpoint, crRequestCbor(csr), { cert, key, ca });
  } catch (err) {
    // The liteboot listener drops a connection whose certificate it refuses, with no HTTP answer.
    throw new TesseraError("TESSERA_ERR_INTERNAL", { message: "cannot enroll over the liteboot API", detail: `${endpoint.href}: ${(err as Error).message}`, cause: err });
  }
  const issued = certificateFrom(answer);

  // Steps 7-8: the certificate is for our key and verifies against CA.crt (openssl verify -CAfile).
  if (!issued.spki.equals(spkiDer(privateKey))) throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message: "the issued certificate is not for this device's key" });
  let trust;
  try {
    trust = splitTrust(loadCertificates(ca, path.join(bootDir, "CA.crt")));
  } catch (err) {
    throw new UsageError(`${path.join(bootDir, "CA.crt")}: ${(err as Error).message}`);
  }
  const verified = await verifyPeer(issued.der, [], trust);
  if (verified.status !== "verified") {
    throw new TesseraError("TESSERA_ERR_INPUT_MALFORMED", { message: "the issued certificate does not verify against CA.crt", detail: verified.status === "rejected" ? verified.reason : verified.status });
  }

  fs.mkdirSync(certsDir, { recursive: true });
  const files = { key: path.join(certsDir, `${uuid}.key`), cert: path.join(certsDir, `${uuid}.crt`) };
  fs.writeFileSync(files.key, privateKey.export({ type: "sec1", format: "pem" }) as string, { flag: "wx", mode: 0o600 });
  fs.writeFileSync(files.cert, pemEncode("CERTIFICATE", issued.der), { flag: "wx" });

  const serial = serialToBigInt(issued.serial).toString();
  if (inv.io.json) {
    inv.io.out(JSON.stringify({ uuid, serial, serialHex: issued.serialHex, subject: formatName(issued.subject), notAfter: issued.notAfter.toISOString(), server: url.origin, files }));
  } else {
    inv.io.out(`device ${uuid} enrolled at ${url.origin} (serial ${serial}, ${formatName(issued.subject)}, valid until ${issued.notAfter.toISOString()})`);
    inv.io.out(`  ${files.key}`);
    inv.io.out(`  ${files.cert}`);
  }
  return EXIT.ok;
};

/** liteboot device-side commands for the command table. */
export const litebootDeviceCommands: Record<string, Command> = {
  "device new": deviceNew,
};
