/**
 * Caramel's admin tool as `tessera caramel list|sign|reject` (spec caramel.md
 * §5): the operator decides the CSRs Caramel clients posted. Signing goes
 * through the authority like everything else; a rejected request stays
 * rejected (clients get 403 and start over with a new key).
 */
import { TesseraError } from "../errors.js";
import { CaramelService } from "../protocols/caramel/service.js";
import { EXIT, UsageError } from "./output.js";
import { withAuthority } from "./commands-cert.js";
import type { Invocation } from "./main.js";
import type { Command } from "./commands.js";

async function service(inv: Invocation, fn: (s: CaramelService, a: Parameters<Parameters<typeof withAuthority>[1]>[0]) => Promise<number>): Promise<number> {
  const config = await inv.config();
  return withAuthority(inv, (authority) => fn(new CaramelService(authority, config.caramel), authority));
}

const list: Command = (inv) =>
  service(inv, async (_s, authority) => {
    const requests = (await authority.devices.listRequests({ protocol: "caramel" })).filter((r) => r.status !== "rejected");
    const rows = await Promise.all(requests.map(async (r) => {
      const cert = r.certificateSerial ? await authority.getCertificate(r.certificateSerial) : undefined;
      return { id: r.id, commonName: r.attributes.commonName ?? "", sha256: r.csrSha256, status: r.status, notAfter: cert?.notAfter.toISOString() ?? null };
    }));
    // Signed first, then the rest, each oldest first (as the original lists them).
    rows.sort((a, b) => Number(a.notAfter === null) - Number(b.notAfter === null));
    if (inv.io.json) inv.io.out(JSON.stringify(rows));
    else for (const r of rows) inv.io.out(`${r.id} ${r.commonName || "(no CN)"} ${r.sha256} ${r.notAfter ?? "----------"}`);
    return EXIT.ok;
  });

const decide = (what: "sign" | "reject"): Command => (inv) => {
  const ref = inv.args[0];
  if (!ref) throw new UsageError("an ID or SHA256 argument is needed");
  if (what === "reject" && inv.flags.long === true) throw new UsageError("--long applies to sign only");
  return service(inv, async (s, authority) => {
    const request = await authority.devices.findRequest(ref);
    if (!request || request.protocol !== "caramel") throw new TesseraError("TESSERA_ERR_REQUEST_NOT_FOUND", { detail: ref });
    if (what === "reject") {
      const decided = await authority.devices.decide(request.id, "rejected", "cli", null);
      if (inv.io.json) inv.io.out(JSON.stringify({ id: decided.id, status: decided.status }));
      else inv.io.out(`request ${decided.id} rejected`);
      return EXIT.ok;
    }
    const cert = await s.sign(request, { long: inv.flags.long === true, actor: "cli" });
    if (inv.io.json) inv.io.out(JSON.stringify({ id: request.id, serial: cert.serial, notAfter: cert.notAfter.toISOString() }));
    else inv.io.out(`request ${request.id} signed: serial ${cert.serial}, valid until ${cert.notAfter.toISOString()}`);
    return EXIT.ok;
  });
};

/** Caramel commands for the command table. */
export const caramelCommands: Record<string, Command> = {
  "caramel list": list,
  "caramel sign": decide("sign"),
  "caramel reject": decide("reject"),
};
