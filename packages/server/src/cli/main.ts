/**
 * `tessera` command-line entry: parses arguments, loads configuration and
 * dispatches to one command. Commands are thin: parse, one core call, print.
 */
import "reflect-metadata";
import * as os from "node:os";
import { parseArgs } from "node:util";
import { loadConfig } from "../config/load.js";
import type { TesseraConfig } from "../config/types.js";
import { TesseraError } from "../errors.js";
import { HELP } from "./help.js";
import { EXIT, reportError, UsageError, type Io } from "./output.js";
import { COMMANDS } from "./commands.js";

const OPTIONS = {
  config: { type: "string" },
  "data-dir": { type: "string" },
  listen: { type: "string" },
  "http-listen": { type: "string" },
  hostname: { type: "string" },
  "database-url": { type: "string" },
  "ca-passphrase-file": { type: "string" },
  "log-level": { type: "string" },
  workers: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  // command options
  "key-type": { type: "string" },
  "import-cert": { type: "string" },
  "import-key": { type: "string" },
  "import-key-passphrase-file": { type: "string" },
  root: { type: "string" },
  csr: { type: "string" },
  profile: { type: "string" },
  subject: { type: "string" },
  san: { type: "string", multiple: true },
  device: { type: "string" },
  status: { type: "string" },
  limit: { type: "string" },
  reason: { type: "string" },
  value: { type: "string" },
  scope: { type: "string" },
  expires: { type: "string" },
  "max-uses": { type: "string" },
  password: { type: "string" },
  label: { type: "string" },
  name: { type: "string" },
  out: { type: "string" },
  long: { type: "boolean" },
  bootstrap: { type: "string" },
  server: { type: "string" },
  ou: { type: "string" },
  organization: { type: "string" },
  role: { type: "string" },
  key: { type: "string" },
  "external-key": { type: "string" },
} as const;

/** Parsed command line handed to a command. */
export interface Invocation {
  /** The whole command line as main() got it (what `serve --workers N` hands its worker processes). */
  argv: string[];
  args: string[];
  flags: Record<string, string | boolean | string[] | undefined>;
  io: Io;
  /** Loads and validates configuration; throws TESSERA_ERR_CONFIG_INVALID listing every problem. */
  config(): Promise<TesseraConfig>;
  env: NodeJS.ProcessEnv;
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], io?: Partial<Io>, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const out: Io = {
    out: io?.out ?? ((t) => process.stdout.write(t + "\n")),
    err: io?.err ?? ((t) => process.stderr.write(t + "\n")),
    json: argv.includes("--json"),
  };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    return reportError(out, new UsageError((err as Error).message));
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    out.out(HELP);
    return positionals.length === 0 && !values.help ? EXIT.usage : EXIT.ok;
  }
  const [group, sub] = positionals;
  const key = COMMANDS[group!] && typeof COMMANDS[group!] === "function" ? group! : `${group} ${sub ?? ""}`.trim();
  const command = COMMANDS[key];
  if (!command) return reportError(out, new UsageError(`unknown command '${positionals.join(" ")}'`));
  const args = positionals.slice(key.split(" ").length);
  const flags = values as Invocation["flags"];
  const inv: Invocation = {
    argv,
    args,
    flags,
    io: out,
    env,
    async config() {
      const result = await loadConfig({
        flags: Object.fromEntries(Object.entries(flags).filter(([, v]) => typeof v === "string" || typeof v === "boolean")) as Record<string, string | boolean>,
        env,
        cwd: process.cwd(),
        systemHostname: () => os.hostname(),
      });
      if (!result.config || result.problems.length > 0) {
        throw new TesseraError("TESSERA_ERR_CONFIG_INVALID", {
          detail: result.problems.map((p) => `${p.key}: ${p.message} [${p.source}]`).join("; "),
        });
      }
      return result.config;
    },
  };
  try {
    return await command(inv);
  } catch (err) {
    return reportError(out, err);
  }
}
