/**
 * The command table: "group sub" → handler. Server, CA, config and store
 * commands live here; certificate and secret commands in commands-cert.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import pino from "pino";
import { parseKeyType } from "@tessera/pki";
import { loadConfig } from "../config/load.js";
import { caPaths, describeCertificate, importCa, initCa, loadCa } from "../ca/ca-files.js";
import { createRollover } from "../ca/rollover.js";
import { openStore } from "../store/index.js";
import { installSignalHandlers, startServer } from "../server.js";
import { clusterWorker, runPrimary } from "../cluster.js";
import { EXIT, UsageError } from "./output.js";
import type { Invocation } from "./main.js";
import { certCommands } from "./commands-cert.js";
import { deviceCommands } from "./commands-device.js";
import { litebootDeviceCommands } from "./commands-liteboot-device.js";
import { estCommands } from "./commands-est.js";
import { bootstrapCommands } from "./commands-bootstrap.js";
import { caramelCommands } from "./commands-caramel.js";
import { mainfluxCommands } from "./commands-mainflux.js";
import { importCommands } from "./commands-import.js";

/** A command handler: returns the exit code. */
export type Command = (inv: Invocation) => Promise<number>;

function str(inv: Invocation, name: string): string | undefined {
  const v = inv.flags[name];
  return typeof v === "string" ? v : undefined;
}

function readFile(path: string, what: string): string {
  if (!fs.existsSync(path)) throw new UsageError(`${what} not found: ${path}`);
  return fs.readFileSync(path, "utf8");
}

const serve: Command = async (inv) => {
  const config = await inv.config();
  const worker = clusterWorker();
  const logger = worker ? pino({ level: config.logLevel }).child({ worker: worker.index }) : pino({ level: config.logLevel });
  if (config.workers > 1 && !worker) {
    // --workers N: this process is the primary (cluster.ts); the workers run this command again.
    const c = await runPrimary({ config, logger, argv: inv.argv, env: inv.env, banner: inv.io.json ? undefined : inv.io.out });
    if (inv.io.json) inv.io.out(JSON.stringify({ url: c.url, httpUrl: c.httpUrl, rootSha256: c.rootSha256, dataDir: config.dataDir, workers: c.pids() }));
    await new Promise<never>(() => undefined); // runs until a signal handler exits the process
  }
  const server = await startServer(config, { logger, banner: worker?.banner ?? (inv.io.json ? () => undefined : inv.io.out), singletons: worker?.singletons });
  if (worker) worker.ready(server);
  else if (inv.io.json) inv.io.out(JSON.stringify({ url: server.url, httpUrl: server.httpUrl, rootSha256: describeCertificate(server.authority.ca.root).sha256, dataDir: config.dataDir }));
  installSignalHandlers(server, logger);
  await new Promise<never>(() => undefined); // runs until a signal handler exits the process
  return EXIT.ok;
};

const caInit: Command = async (inv) => {
  const config = await inv.config();
  const passphrase = { env: inv.env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile };
  const importCert = str(inv, "import-cert");
  const importKey = str(inv, "import-key");
  if (Boolean(importCert) !== Boolean(importKey)) throw new UsageError("--import-cert and --import-key go together");
  const result = importCert
    ? await importCa({
        dataDir: config.dataDir,
        passphrase,
        certificatePem: readFile(importCert, "certificate"),
        keyPem: readFile(importKey!, "key"),
        keyPassphrase: str(inv, "import-key-passphrase-file") ? readFile(str(inv, "import-key-passphrase-file")!, "passphrase file").replace(/\r?\n$/, "") : undefined,
        rootPem: str(inv, "root") ? readFile(str(inv, "root")!, "root certificate") : undefined,
      })
    : await initCa({ dataDir: config.dataDir, passphrase, keyType: str(inv, "key-type") ?? config.ca.keyType, name: config.ca.name, organization: config.ca.organization });
  const root = describeCertificate(result.material.root);
  const issuer = describeCertificate(result.material.issuer.certificate);
  if (inv.io.json) inv.io.out(JSON.stringify({ root, issuer, dir: caPaths(config.dataDir).dir, generatedPassphraseFile: result.generatedPassphraseFile ?? null }));
  else {
    inv.io.out(`${importCert ? "Imported" : "Created"} CA in ${caPaths(config.dataDir).dir}`);
    inv.io.out(`  root:   ${root.subject}  SHA-256 ${root.sha256}`);
    inv.io.out(`  issuer: ${issuer.subject}  valid until ${issuer.notAfter}`);
    if (result.generatedPassphraseFile) inv.io.out(`  key passphrase generated into ${result.generatedPassphraseFile} (0600): back it up`);
  }
  return EXIT.ok;
};

const caShow: Command = async (inv) => {
  const config = await inv.config();
  const ca = loadCa(config.dataDir, { env: inv.env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile });
  const rollover = ca.rollover && {
    newRoot: describeCertificate(ca.rollover.newRoot),
    oldWithNew: describeCertificate(ca.rollover.oldWithNew),
    newWithOld: describeCertificate(ca.rollover.newWithOld),
  };
  const certs = { root: describeCertificate(ca.root), issuer: describeCertificate(ca.issuer.certificate), ...(rollover ? { rollover } : {}) };
  if (inv.io.json) inv.io.out(JSON.stringify(certs));
  else {
    const list: [string, ReturnType<typeof describeCertificate>][] = [["root", certs.root], ["issuer", certs.issuer]];
    if (rollover) list.push(["rollover new root (NewWithNew)", rollover.newRoot], ["rollover OldWithNew", rollover.oldWithNew], ["rollover NewWithOld", rollover.newWithOld]);
    for (const [name, c] of list) {
      inv.io.out(`${name}:\n  subject:    ${c.subject}\n  issuer:     ${c.issuer}\n  serial:     ${c.serial}\n  not before: ${c.notBefore}\n  not after:  ${c.notAfter}\n  SHA-256:    ${c.sha256}`);
    }
  }
  return EXIT.ok;
};

const caRollover: Command = async (inv) => {
  const config = await inv.config();
  const keyType = str(inv, "key-type");
  if (keyType !== undefined) {
    try {
      parseKeyType(keyType);
    } catch {
      throw new UsageError(`unknown key type: ${keyType}`);
    }
  }
  const { rollover, paths } = await createRollover({ dataDir: config.dataDir, passphrase: { env: inv.env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile }, keyType });
  const newRoot = describeCertificate(rollover.newRoot);
  const files = { newRoot: paths.newRoot, newRootKey: paths.newRootKey, oldWithNew: paths.oldWithNew, newWithOld: paths.newWithOld };
  if (inv.io.json) {
    inv.io.out(JSON.stringify({ newRoot, oldWithNew: describeCertificate(rollover.oldWithNew), newWithOld: describeCertificate(rollover.newWithOld), dir: paths.dir, files }));
  } else {
    inv.io.out(`Created a root rollover in ${paths.dir}`);
    inv.io.out(`  new root: ${newRoot.subject}\n  valid:    ${newRoot.notBefore} to ${newRoot.notAfter}\n  SHA-256:  ${newRoot.sha256}`);
    for (const [name, f] of Object.entries(files)) inv.io.out(`  ${(name + ":").padEnd(12)}${f}`);
    inv.io.out("  EST /cacerts serves the new root and both cross certificates after a restart; the issuing CA is unchanged.");
  }
  return EXIT.ok;
};

const configCheck: Command = async (inv) => {
  const result = await loadConfig({
    flags: Object.fromEntries(Object.entries(inv.flags).filter(([, v]) => typeof v === "string" || typeof v === "boolean")) as Record<string, string | boolean>,
    env: inv.env,
    cwd: process.cwd(),
    systemHostname: () => os.hostname(),
  });
  if (inv.io.json) inv.io.out(JSON.stringify({ ok: result.problems.length === 0, file: result.file ?? null, problems: result.problems, config: result.problems.length === 0 ? result.config : undefined }));
  else if (result.problems.length > 0) {
    inv.io.err(`${result.problems.length} problem(s) in the configuration${result.file ? ` (${result.file})` : ""}:`);
    for (const p of result.problems) inv.io.err(`  - ${p.key}: ${p.message} [${p.source}]`);
  } else {
    const c = result.config!;
    inv.io.out(`Configuration OK${result.file ? ` (${result.file})` : " (no config file)"}`);
    inv.io.out(`  data dir: ${c.dataDir}\n  hostname: ${c.hostname}\n  database: ${c.databaseUrl}`);
    for (const l of c.listeners) inv.io.out(`  listener ${l.name}: ${l.host}:${l.port} client-cert=${l.clientCert} protocols=${l.protocols.join(",")}`);
    inv.io.out(`  profiles: ${Object.keys(c.profiles).join(", ")} (default ${c.defaultProfile})`);
  }
  return result.problems.length === 0 ? EXIT.ok : EXIT.config;
};

const dbMigrate: Command = async (inv) => {
  const config = await inv.config();
  const store = await openStore(config.databaseUrl, { synchronous: config.sqlite.synchronous });
  try {
    const applied = await store.migrate();
    const version = await store.schemaVersion();
    if (inv.io.json) inv.io.out(JSON.stringify({ applied, version, kind: store.kind }));
    else inv.io.out(`${applied} migration(s) applied; schema version ${version} (${store.kind})`);
  } finally {
    await store.close();
  }
  return EXIT.ok;
};

/** Every command by name ("group sub" or a single word). */
export const COMMANDS: Record<string, Command> = {
  serve,
  "ca init": caInit,
  "ca show": caShow,
  "ca rollover": caRollover,
  "config check": configCheck,
  "db migrate": dbMigrate,
  ...certCommands,
  ...deviceCommands,
  ...litebootDeviceCommands,
  ...estCommands,
  ...importCommands,
  ...bootstrapCommands,
  ...caramelCommands,
  ...mainfluxCommands,
};
