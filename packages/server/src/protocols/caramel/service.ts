/**
 * The Caramel front-end's decisions (docs/protocols/caramel.md, spec
 * caramel.md): a posted CSR is an enrollment request identified by the
 * SHA-256 of its exact PEM bytes, pending until an operator signs it (or,
 * in auto mode, at once for a UUID client id not seen before, or when the
 * poster presents its current certificate for the same subject); polling
 * answers with the newest certificate; a scheduler re-signs certificates
 * ahead of expiry. Everything goes through the authority and the store.
 */
import {
  decodeName, formatName, nameAttribute, parseAndVerifyCsr, pemEncode, type ParsedCertificate, type ParsedCsr,
} from "@tessera/pki";
import type { Authority } from "../../authority/authority.js";
import type { CertificateRecord, EnrollmentRequestRecord } from "../../authority/ports.js";
import type { CaramelConfig } from "../../config/types.js";
import { TesseraError } from "../../errors.js";

/** A refusal in Caramel's terms: status and problem detail (null for none). */
export class CaramelFailure extends Error {
  constructor(
    readonly status: number,
    readonly detail: string | null,
    readonly reason: string = detail ?? "",
  ) {
    super(reason);
  }
}

/** What a poll finds. */
export type PollResult =
  | { state: "unknown" }
  | { state: "rejected" }
  | { state: "pending"; request: EnrollmentRequestRecord }
  | { state: "signed"; request: EnrollmentRequestRecord; certificate: CertificateRecord; pem: string };

/** The slice of the authority this front-end uses. */
export type CaramelAuthority = Pick<Authority, "issue" | "devices" | "getCertificate" | "ca">;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PREFIX_TYPES = ["C", "ST", "L", "O"] as const;

/** Python's repr of a str, as the original's error messages show subjects. */
function pyStr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  return q + s.replace(/\\/g, "\\\\").replace(new RegExp(q, "g"), `\\${q}`) + q;
}

/** Python's repr of a tuple of (name, value) pairs, e.g. (('O', 'Other AB'),). */
function pyPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  const items = pairs.map(([k, v]) => `(${pyStr(k)}, ${pyStr(v)})`);
  return `(${items.join(", ")}${items.length === 1 ? "," : ""})`;
}

/** The device id of a Caramel client: its CN. */
export const caramelDeviceId = (cn: string): string => `caramel:${cn}`;

/** The Caramel service. */
export class CaramelService {
  constructor(
    private readonly authority: CaramelAuthority,
    private readonly config: CaramelConfig,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The CA the clients trust and the certificates chain to: the root (spec §2, `/root.crt`). */
  rootPem(): string {
    return pemEncode("CERTIFICATE", this.authority.ca.root.der);
  }

  /** The subject prefix every CSR must start with: the CA subject's C, ST, L, O in that order (spec §2.3). */
  private prefix(): Array<[string, string]> {
    const ca = decodeName(this.authority.ca.root.subject);
    return PREFIX_TYPES.flatMap((t) => ca.filter((a) => a.type === t).slice(0, 1).map((a): [string, string] => [t, a.value]));
  }

  /** POST /{sha256} checks 4–7 (spec §2.1) and storage. Returns the stored request. */
  async submit(body: Buffer, sha256: string, presented?: ParsedCertificate): Promise<EnrollmentRequestRecord> {
    const text = body.toString("latin1");
    const blocks = /^-----BEGIN CERTIFICATE REQUEST-----\n((?:[A-Za-z0-9+/=]{1,64}\n)+)-----END CERTIFICATE REQUEST-----\n$/.exec(text);
    // Canonical: re-encoding the parsed request as OpenSSL PEM gives the body back, byte for byte.
    const der = blocks ? Buffer.from(blocks[1]!.replace(/\n/g, ""), "base64") : undefined;
    if (!der || pemEncode("CERTIFICATE REQUEST", der) !== text) throw new CaramelFailure(400, "crypto error: invalid PEM reqtext");
    let csr: ParsedCsr;
    try {
      csr = await parseAndVerifyCsr(der);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new CaramelFailure(400, code === "TESSERA_ERR_PKI_MALFORMED_DER" ? "crypto error: invalid PEM reqtext" : "crypto error: Invalid Request", (err as Error).message);
    }
    const subject = decodeName(csr.subject).map((a): [string, string] => [a.type, a.value]);
    const prefix = this.prefix();
    if (subject.length < prefix.length) throw new CaramelFailure(400, "Bad subject: Too few subject components");
    const head = subject.slice(0, prefix.length);
    if (head.some(([k, v], i) => k !== prefix[i]![0] || v !== prefix[i]![1])) throw new CaramelFailure(400, `Bad subject: ${pyPairs(head)} do not match ${pyPairs(prefix)}`);
    const cn = nameAttribute(csr.subject, "CN") ?? "";
    const ou = decodeName(csr.subject).find((a) => a.type === "OU")?.value ?? "";
    let request: EnrollmentRequestRecord;
    try {
      request = await this.authority.devices.submitByHash({
        protocol: "caramel", csr: der, csrSha256: sha256, subject: formatName(csr.subject), profile: this.config.profile, attributes: { commonName: cn, orgUnit: ou },
      });
    } catch (err) {
      if (err instanceof TesseraError && err.code === "TESSERA_ERR_REQUEST_DUPLICATE") throw new CaramelFailure(400, "duplicate request");
      throw err;
    }
    await this.autoSign(request, csr, cn, presented);
    return request;
  }

  /** Signs at once where policy allows: a renewal over the current certificate, or auto mode for a new UUID. */
  private async autoSign(request: EnrollmentRequestRecord, csr: ParsedCsr, cn: string, presented?: ParsedCertificate): Promise<void> {
    if (cn === "") return;
    if (presented && this.config.renewWithCertificate) {
      const record = await this.authority.getCertificate(presented.serialHex);
      const current = record?.protocol === "caramel" && record.status === "valid" && record.notAfter > this.now() && presented.subject.equals(csr.subject);
      if (current) {
        const long = record.notAfter.getTime() - record.notBefore.getTime() >= this.config.lifetimeLong * 1000;
        await this.sign(request, { long, actor: `certificate:${presented.serialHex}`, csr });
        return;
      }
    }
    if (this.config.mode === "auto" && UUID_RE.test(cn) && !(await this.authority.devices.get(caramelDeviceId(cn)))) {
      await this.sign(request, { long: false, actor: "caramel:auto", csr });
    }
  }

  /**
   * Signs a request (operator, auto mode, renewal or refresh) through the
   * pipeline: the CSR as stored, the short or long lifetime, the device
   * named by its CN. Refuses rejected requests and CSRs without CN.
   */
  async sign(request: EnrollmentRequestRecord, opts: { long: boolean; actor: string; csr?: ParsedCsr }): Promise<CertificateRecord> {
    if (request.status === "rejected") throw new TesseraError("TESSERA_ERR_REQUEST_ALREADY_DECIDED", { message: "refusing to sign a rejected request", detail: request.id });
    const cn = request.attributes.commonName ?? "";
    if (cn === "") throw new TesseraError("TESSERA_ERR_CSR_POLICY", { message: "the CSR has no CN: Caramel certificates carry DNS:<CN>", detail: request.id });
    const issued = await this.authority.issue({
      // The request's CSR as submit() just verified it (its key is not imported again), else as stored.
      csr: opts.csr?.der.equals(request.csr) ? opts.csr : request.csr,
      profile: request.profile,
      protocol: "caramel",
      credential: { kind: "operator", actor: opts.actor },
      sans: [{ type: "dns", value: cn }],
      validitySeconds: opts.long ? this.config.lifetimeLong : this.config.lifetimeShort,
      device: { id: caramelDeviceId(cn), fingerprint: null, status: "active", attributes: { commonName: cn } },
      requestId: request.id,
    });
    return issued.record;
  }

  /** GET /{sha256} (spec §2.2): the request's newest certificate if it is still valid, else pending. */
  async poll(sha256: string): Promise<PollResult> {
    const request = await this.authority.devices.findRequest(sha256);
    if (!request || request.protocol !== "caramel") return { state: "unknown" };
    if (request.status === "rejected") return { state: "rejected" };
    const certificate = request.certificateSerial ? await this.authority.getCertificate(request.certificateSerial) : undefined;
    if (!certificate || certificate.notAfter <= this.now() || certificate.status === "revoked") return { state: "pending", request };
    return { state: "signed", request, certificate, pem: pemEncode("CERTIFICATE", certificate.der) };
  }

  /**
   * Re-signs every signed, unrejected request whose newest certificate ends
   * within `refreshBefore` (expired ones too, as the original's refresh
   * does), with the lifetime class of that certificate; revoked ones and
   * revoked devices are left alone. Returns how many were re-signed.
   */
  async refresh(log: (msg: string, err?: unknown) => void = () => undefined): Promise<number> {
    if (this.config.refreshBefore <= 0) return 0;
    const horizon = this.now().getTime() + this.config.refreshBefore * 1000;
    let count = 0;
    for (const request of await this.authority.devices.listRequests({ protocol: "caramel", status: "approved" })) {
      if (!request.certificateSerial) continue;
      const cert = await this.authority.getCertificate(request.certificateSerial);
      if (!cert || cert.status === "revoked" || cert.notAfter.getTime() > horizon) continue;
      const device = cert.deviceId ? await this.authority.devices.get(cert.deviceId) : undefined;
      if (device && device.status !== "active") continue;
      try {
        await this.sign(request, { long: cert.notAfter.getTime() - cert.notBefore.getTime() >= this.config.lifetimeLong * 1000, actor: "caramel:refresh" });
        count++;
      } catch (err) {
        log(`refresh of request ${request.id} failed`, err);
      }
    }
    return count;
  }
}
