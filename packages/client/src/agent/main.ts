/**
 * `tessera-agent` command-line entry: parses arguments, checks that every
 * option applies to the command, and dispatches. The agent runs on devices,
 * so it uses the client SDK only and never imports the server.
 */
import { parseArgs } from "node:util";
import { COMMANDS } from "./commands.js";
import { isEmbeddedCaramel } from "./commands-caramel.js";
import { COMMAND_HELP, HELP } from "./help.js";
import { OPTIONS, type Invocation, type OptionName } from "./options.js";
import { EXIT, reportError, UsageError, type AgentIo } from "./output.js";

export { EXIT } from "./output.js";
export type { AgentIo } from "./output.js";

const ALWAYS: readonly OptionName[] = ["json", "help"];

function commandHelp(name: string): string | undefined {
  return (COMMAND_HELP as Record<string, string>)[name];
}

/** Commands of a group are two words ("est cacerts"): the first two positionals name one when they match a command. */
function joinGroup(words: string[]): string[] {
  const [first, second, ...rest] = words;
  if (first !== undefined && second !== undefined && Object.hasOwn(COMMANDS, `${first} ${second}`)) return [`${first} ${second}`, ...rest];
  return words;
}

function unknownCommand(name: string): string {
  const group = Object.keys(COMMANDS).filter((c) => c.startsWith(`${name} `)).map((c) => c.slice(name.length + 1));
  if (group.length > 0) return `'${name}' needs a subcommand: ${group.join(", ")}`;
  return `unknown command '${name}'`;
}

/**
 * Runs the agent CLI with `argv` (without node and the script) and returns
 * the exit code (see EXIT). `io` replaces standard output and error, and its
 * `signal` stops `run` (default: SIGTERM/SIGINT) and its `sleep` replaces
 * caramel's waits; `env` supplies TESSERA_SERVER, TESSERA_BUILD_SECRET,
 * TESSERA_AGENT_DIR and caramel's TESSERA_CA, TESSERA_CN, TESSERA_CERT_DIR.
 */
export async function main(argv: string[], io?: Partial<Omit<AgentIo, "json">>, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const code = await dispatch(argv, io, env);
  // `caramel --embedded` promises 0, 1, 69 or 127 only: a command-line mistake found before the command runs is 127 too.
  return code === EXIT.usage && isEmbeddedCaramel(argv) ? EXIT.embeddedError : code;
}

async function dispatch(argv: string[], io: Partial<Omit<AgentIo, "json">> | undefined, env: NodeJS.ProcessEnv): Promise<number> {
  const out: AgentIo = {
    out: io?.out ?? ((t) => process.stdout.write(t + "\n")),
    err: io?.err ?? ((t) => process.stderr.write(t + "\n")),
    // Known before parsing so that a parse error is reported as JSON too.
    json: argv.includes("--json"),
    ...(io?.signal ? { signal: io.signal } : {}),
    ...(io?.sleep ? { sleep: io.sleep } : {}),
  };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    return reportError(out, new UsageError((err as Error).message));
  }
  const { values, positionals } = parsed;
  const [name, ...args] = joinGroup(positionals);
  if (name === undefined || name === "help") {
    const [topic] = joinGroup(args);
    if (topic !== undefined && !commandHelp(topic)) return reportError(out, new UsageError(unknownCommand(topic)));
    out.out((topic !== undefined ? commandHelp(topic)! : HELP).trimEnd());
    // A bare `tessera-agent` is a mistake (exit 2); asking for help is not.
    return name === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) return reportError(out, new UsageError(unknownCommand(name)));
  if (values.help) {
    out.out(commandHelp(name)!.trimEnd());
    return EXIT.ok;
  }
  if (args.length > 0) return reportError(out, new UsageError(`'${name}' takes no arguments, got '${args.join(" ")}'`));
  const allowed = new Set<string>([...ALWAYS, ...command.options]);
  const stray = Object.keys(values).filter((k) => !allowed.has(k));
  if (stray.length > 0) return reportError(out, new UsageError(`${stray.map((k) => `--${k}`).join(", ")} does not apply to '${name}'`));
  const inv: Invocation = { args, flags: values as Invocation["flags"], io: out, env };
  try {
    return await command.run(inv);
  } catch (err) {
    return reportError(out, err);
  }
}
