/**
 * Import commands: move an existing install to Tessera. `import liteboot DIR`
 * takes a liteboot working directory (certs/, CADB.db) into a fresh data
 * directory (see ca/import-liteboot.ts).
 */
import { importLiteboot } from "../ca/import-liteboot.js";
import { openStore } from "../store/index.js";
import { EXIT, UsageError } from "./output.js";
import type { Command } from "./commands.js";

const importLitebootCommand: Command = async (inv) => {
  const dir = inv.args[0];
  if (!dir) throw new UsageError("a DIR argument is needed: the directory liteboot runs in (holding certs/ and CADB.db)");
  if (inv.args.length > 1) throw new UsageError(`one DIR only, got: ${inv.args.join(" ")}`);
  const config = await inv.config();
  const store = await openStore(config.databaseUrl, { synchronous: config.sqlite.synchronous });
  try {
    await store.migrate();
    const r = await importLiteboot({ source: dir, dataDir: config.dataDir, passphrase: { env: inv.env.TESSERA_CA_PASSPHRASE, file: config.caPassphraseFile }, store });
    if (inv.io.json) {
      inv.io.out(JSON.stringify({ ...r, generatedPassphraseFile: r.generatedPassphraseFile ?? null }));
    } else {
      inv.io.out(`Imported liteboot from ${r.paths.source}`);
      inv.io.out(`  CA:           ${r.ca.subject}  SHA-256 ${r.ca.sha256}  valid until ${r.ca.notAfter}`);
      inv.io.out(`  devices:      ${r.devices}`);
      inv.io.out(`  certificates: ${r.certificates}${r.revoked ? ` (${r.revoked} revoked)` : ""}`);
      inv.io.out(`  CA files:     ${r.paths.caDir}`);
      inv.io.out(`  liteboot TLS: ${r.paths.serverCert}, ${r.paths.serverKey} (SERVER.crt, unchanged)`);
      if (r.generatedPassphraseFile) inv.io.out(`  key passphrase generated into ${r.generatedPassphraseFile} (0600): back it up`);
      for (const w of r.warnings) inv.io.err(`warning: ${w}`);
    }
  } finally {
    await store.close();
  }
  return EXIT.ok;
};

/** Import commands for the command table. */
export const importCommands: Record<string, Command> = {
  "import liteboot": importLitebootCommand,
};
