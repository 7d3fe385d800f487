/**
 * The agent's one-shot commands (fingerprint, enroll, renew, status) and the
 * command table the dispatcher uses (the `est …` commands are in
 * commands-est.ts, `caramel` in commands-caramel.ts). Each command is thin:
 * read its options, make one SDK call, print the result.
 */
import { generateFingerprint } from "../fingerprint/fingerprint.js";
import { isEnrolled } from "../keystore/store-dir.js";
import { ImprintError } from "../protocols/imprint/errors.js";
import { DEFAULT_RENEWAL_THRESHOLD_MS, renewOrReenroll, type RenewOutcome } from "../protocols/imprint/renew-or-reenroll.js";
import { EXIT, UsageError } from "./output.js";
import { buildSecret, deviceFingerprint, duration, imprintClient, storeDir, str, type Invocation, type OptionName } from "./options.js";
import { CARAMEL_COMMANDS } from "./commands-caramel.js";
import { EST_COMMANDS } from "./commands-est.js";
import { runCommand } from "./run.js";
import { NO_SECRET_HINT, operations, renewalWindows, summarise, summaryLines, type Command } from "./shared.js";

const fingerprint: Command = async (inv) => {
  const persistDir = str(inv, "persist-dir");
  if (persistDir === "") throw new UsageError("--persist-dir must not be empty");
  const r = await generateFingerprint({ ...(persistDir !== undefined ? { persistDir } : {}), preferPersisted: inv.flags["prefer-persisted"] === true });
  if (inv.io.json) inv.io.out(JSON.stringify({ fingerprint: r.fingerprint, tier: r.tier, attributes: r.attributes }));
  else inv.io.out(`${r.fingerprint} (${r.tier})`);
  return EXIT.ok;
};

const enroll: Command = async (inv) => {
  const dir = storeDir(inv);
  const client = imprintClient(inv, dir);
  const secret = buildSecret(inv);
  if (secret === undefined) throw new UsageError(`no build secret: ${NO_SECRET_HINT}`);
  const replaced = await isEnrolled(dir);
  const fp = await deviceFingerprint(inv, dir);
  await client.enroll({ buildSecret: secret, fingerprint: fp.fingerprint });
  const s = await summarise(dir, DEFAULT_RENEWAL_THRESHOLD_MS);
  if (inv.io.json) inv.io.out(JSON.stringify({ status: "enrolled", replaced, fingerprintTier: fp.tier, ...s }));
  else {
    inv.io.out(`${replaced ? "Enrolled again (identity replaced)" : "Enrolled"} in ${dir}`);
    for (const line of summaryLines(s)) inv.io.out(line);
    inv.io.out(`  tier:         ${fp.tier}`);
  }
  return EXIT.ok;
};

const renew: Command = async (inv) => {
  const dir = storeDir(inv);
  const client = imprintClient(inv, dir);
  const windows = renewalWindows(inv);
  let outcome: RenewOutcome;
  if (inv.flags.force === true) {
    // Forced renewal is Tier 1 only: without a valid certificate there is nothing to force.
    if (!(await isEnrolled(dir))) throw new ImprintError("not-enrolled", `not enrolled: no certificates in ${dir}`);
    await client.renew();
    outcome = { action: "renewed", attempts: [] };
  } else {
    const secret = buildSecret(inv);
    const fp = await deviceFingerprint(inv, dir);
    outcome = await renewOrReenroll(operations(client, secret), { storeDir: dir, now: () => new Date() }, {
      buildSecret: secret ?? "", fingerprint: fp.fingerprint, ...windows,
    });
  }
  const s = await summarise(dir, windows.thresholdMs);
  if (inv.io.json) inv.io.out(JSON.stringify({ action: outcome.action, attempts: outcome.attempts, ...s }));
  else {
    inv.io.out(outcome.action === "none" ? `No renewal needed (threshold ${str(inv, "threshold") ?? "30d"})` : `Action: ${outcome.action}`);
    for (const a of outcome.attempts) inv.io.out(`  tried ${a.tier}${a.status ? ` (HTTP ${a.status})` : ""}: ${a.error.trimEnd()}`);
    for (const line of summaryLines(s)) inv.io.out(line);
  }
  return EXIT.ok;
};

const status: Command = async (inv) => {
  const dir = storeDir(inv);
  const thresholdMs = duration(inv, "threshold", DEFAULT_RENEWAL_THRESHOLD_MS);
  if (!(await isEnrolled(dir))) {
    if (inv.io.json) inv.io.out(JSON.stringify({ enrolled: false, dir }));
    else inv.io.out(`Not enrolled: no identity in ${dir}`);
    return EXIT.notEnrolled;
  }
  const s = await summarise(dir, thresholdMs);
  if (inv.io.json) inv.io.out(JSON.stringify({ enrolled: true, ...s }));
  else {
    inv.io.out(`Enrolled in ${dir}${s.expired ? " (certificate EXPIRED)" : s.needsRenewal ? " (renewal due)" : ""}`);
    for (const line of summaryLines(s)) inv.io.out(line);
    inv.io.out(`  renewal due:  ${s.needsRenewal ? "yes" : "no"}`);
  }
  return s.expired ? EXIT.expired : EXIT.ok;
};

// Options every command that talks to the server takes.
const CLIENT: readonly OptionName[] = ["server", "secret", "secret-file", "dir", "ca", "fingerprint", "prefer-persisted", "hostname", "timeout"];

/** The command table: name → handler and the options it accepts (besides --json and --help). */
export const COMMANDS: Record<string, { run: Command; options: readonly OptionName[] }> = {
  fingerprint: { run: fingerprint, options: ["persist-dir", "prefer-persisted"] },
  enroll: { run: enroll, options: CLIENT },
  renew: { run: renew, options: [...CLIENT, "threshold", "challenge-window", "force"] },
  status: { run: status, options: ["dir", "threshold"] },
  run: { run: runCommand, options: [...CLIENT, "threshold", "challenge-window", "interval", "jitter", "exec"] },
  ...EST_COMMANDS,
  ...CARAMEL_COMMANDS,
};
