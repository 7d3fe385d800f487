/**
 * Test support for the bus tests: a nats-server or mosquitto of the test's
 * own on a free loopback port (never the system brokers on 4222/1883), that
 * can be stopped and restarted on the same port to simulate an outage.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where the test brokers are looked for (overridable for other systems). */
export const NATS_SERVER = process.env.TESSERA_TEST_NATS_SERVER ?? "/usr/sbin/nats-server";
export const MOSQUITTO = process.env.TESSERA_TEST_MOSQUITTO ?? "/usr/sbin/mosquitto";

/**
 * Why the broker binary cannot be used (undefined when it can), as a skip
 * message; with CI=true a missing binary is a failure instead (the caller
 * registers a failing test).
 */
export function brokerSkip(binary: string, what: string): string | undefined {
  if (existsSync(binary)) return undefined;
  return `${what} not found at ${binary}: skipping (set CI=true to make this a failure)`;
}

/** A free TCP port on 127.0.0.1, never a system broker's. */
export async function freePort(): Promise<number> {
  for (;;) {
    const p = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    if (![4222, 1883, 8883, 6222, 8222].includes(p)) return p;
  }
}

/** A broker process the test controls. */
export class TestBroker {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private readonly log: string[] = [];
  private readonly dir: string;

  private constructor(
    readonly kind: "nats" | "mqtt",
    readonly port: number,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `tessera-bus-${kind}-`));
    if (kind === "mqtt") {
      writeFileSync(
        join(this.dir, "mosquitto.conf"),
        [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "log_dest stderr", "log_type error", "log_type warning", ""].join("\n"),
      );
    }
  }

  /** Starts a broker of `kind` on a free loopback port and waits until it accepts connections. */
  static async start(kind: "nats" | "mqtt"): Promise<TestBroker> {
    const b = new TestBroker(kind, await freePort());
    await b.start();
    return b;
  }

  get url(): string {
    return `${this.kind === "nats" ? "nats" : "mqtt"}://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the broker on its port. */
  async start(): Promise<void> {
    if (this.child) return;
    const [bin, args] =
      this.kind === "nats" ? [NATS_SERVER, ["-a", "127.0.0.1", "-p", String(this.port)]] : [MOSQUITTO, ["-c", join(this.dir, "mosquitto.conf")]];
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (c: Buffer) => this.log.push(c.toString()));
    child.stderr?.on("data", (c: Buffer) => this.log.push(c.toString()));
    this.exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.child = child;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.child = undefined;
        throw new Error(`${bin} exited (${child.exitCode ?? child.signalCode}):\n${this.log.join("")}`);
      }
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port: this.port }, () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
      });
      if (up) return;
      if (Date.now() > deadline) throw new Error(`${bin} did not listen on 127.0.0.1:${this.port}:\n${this.log.join("")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the broker (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await this.exited;
      clearTimeout(timer);
    }
  }

  /** Stops the broker and removes its temp directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
