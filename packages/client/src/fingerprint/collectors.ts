/**
 * Hardware attribute collectors for the device fingerprint (imprint spec §7):
 * machine_id / product_uuid (Linux), machine_guid (Windows), platform_uuid
 * (macOS) and the primary NIC's mac_address everywhere.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";

/** Where the collectors read from; every field can be faked in tests. */
export interface CollectorOptions {
  /** Filesystem prefix for Linux sources (default "/"). */
  root?: string;
  /** Platform whose sources are read (default process.platform). */
  platform?: NodeJS.Platform;
  /** Returns the raw Windows MachineGuid value (default: `reg query` of HKLM\SOFTWARE\Microsoft\Cryptography). */
  readWindowsMachineGuid?: () => Promise<string | undefined>;
  /** Returns the raw output of `ioreg -rd1 -c IOPlatformExpertDevice` (default: runs it). */
  readDarwinIoreg?: () => Promise<string | undefined>;
  /** Interface table used off Linux and when sysfs is absent (default os.networkInterfaces). */
  networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

// ARPHRD_TUNNEL, TUNNEL6, SIT, IPGRE, IP6GRE: their "hardware address" is an IP
// address, which Go's net.Interfaces never reports as a MAC.
const TUNNEL_TYPES = new Set([768, 769, 776, 778, 823]);
const IFF_LOOPBACK = 0x8;
const EXEC_TIMEOUT_MS = 10_000;

/** Normalises an attribute value the way imprint does: trim whitespace at both ends, lowercase. */
export function normaliseValue(value: string): string {
  return value.trim().toLowerCase();
}

/** Compares strings by their UTF-8 bytes (Go's string order), not by UTF-16 code units. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** True if `mac` may identify the device: non-empty, not all zero, not a null-OUI or Docker-generated address. */
export function isUsableMac(mac: string): boolean {
  if (mac === "" || /^[0:]*$/.test(mac)) return false;
  return !mac.startsWith("00:00:00") && !mac.startsWith("02:42:");
}

/**
 * Collects every available attribute for the platform; sources that fail or
 * are empty are left out (never hashed as `key=`).
 */
export async function collectAttributes(opts: CollectorOptions = {}): Promise<Record<string, string>> {
  const platform = opts.platform ?? process.platform;
  const root = opts.root ?? "/";
  const out: Record<string, string> = {};
  const put = (key: string, value: string | undefined) => {
    if (value !== undefined && value !== "") out[key] = value;
  };
  if (platform === "linux") {
    put("machine_id", await readNormalised(path.join(root, "etc/machine-id")));
    // Usually readable by root only, so root and non-root processes differ (spec W22).
    put("product_uuid", await readNormalised(path.join(root, "sys/class/dmi/id/product_uuid")));
  } else if (platform === "win32") {
    const guid = await safe(opts.readWindowsMachineGuid ?? readWindowsMachineGuid);
    put("machine_guid", guid === undefined ? undefined : normaliseValue(guid));
  } else if (platform === "darwin") {
    const ioreg = await safe(opts.readDarwinIoreg ?? readDarwinIoreg);
    put("platform_uuid", ioreg === undefined ? undefined : parseIoregUuid(ioreg));
  }
  put("mac_address", await primaryMac(platform, root, opts.networkInterfaces ?? os.networkInterfaces));
  return out;
}

async function safe(read: () => Promise<string | undefined>): Promise<string | undefined> {
  try {
    return await read();
  } catch {
    return undefined;
  }
}

async function readNormalised(file: string): Promise<string | undefined> {
  try {
    return normaliseValue(await fs.readFile(file, "utf8"));
  } catch {
    return undefined;
  }
}

/** Extracts IOPlatformUUID from ioreg output: first matching line, text after the first `=`, trimmed, quotes stripped, lowercased. */
export function parseIoregUuid(output: string): string | undefined {
  const line = output.split("\n").find((l) => l.includes("IOPlatformUUID"));
  if (line === undefined) return undefined;
  const eq = line.indexOf("=");
  if (eq < 0) return undefined;
  return normaliseValue(line.slice(eq + 1).trim().replace(/^"+|"+$/g, ""));
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: EXEC_TIMEOUT_MS, windowsHide: true }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

/** Reads MachineGuid with `reg query` (64-bit view, as the Go registry call sees it from a 64-bit build). */
export async function readWindowsMachineGuid(): Promise<string | undefined> {
  const out = await run("reg", ["query", "HKLM\\SOFTWARE\\Microsoft\\Cryptography", "/v", "MachineGuid", "/reg:64"]);
  // Line form: "    MachineGuid    REG_SZ    6f1c2d3e-…".
  const m = /MachineGuid\s+REG_\w+\s+(\S+)/i.exec(out);
  return m?.[1];
}

/** Runs `ioreg -rd1 -c IOPlatformExpertDevice` and returns its output. */
export async function readDarwinIoreg(): Promise<string | undefined> {
  return run("ioreg", ["-rd1", "-c", "IOPlatformExpertDevice"]);
}

/** One network interface as the MAC selection sees it. */
export interface NicInfo {
  name: string;
  mac: string;
  loopback: boolean;
}

/**
 * Picks the primary NIC's MAC: interfaces sorted by name (byte order), up or
 * down; the first that is not loopback and has a usable address wins.
 */
export function selectPrimaryMac(nics: readonly NicInfo[]): string | undefined {
  const sorted = [...nics].sort((a, b) => compareBytes(a.name, b.name));
  for (const nic of sorted) {
    const mac = nic.mac.trim().toLowerCase();
    if (!nic.loopback && isUsableMac(mac)) return mac;
  }
  return undefined;
}

async function primaryMac(
  platform: NodeJS.Platform,
  root: string,
  networkInterfaces: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>,
): Promise<string | undefined> {
  if (platform === "linux") {
    const nics = await sysfsNics(root);
    if (nics) return selectPrimaryMac(nics);
    // No sysfs at a fake root means "no NICs"; only the real root falls back.
    if (root !== "/") return undefined;
  }
  // os.networkInterfaces() lists only interfaces holding an address, unlike Go's
  // net.Interfaces(); off Linux there is no portable way to see the others.
  const table = networkInterfaces();
  const nics: NicInfo[] = [];
  for (const [name, infos] of Object.entries(table)) {
    const first = infos?.[0];
    if (first) nics.push({ name, mac: first.mac, loopback: infos.some((i) => i.internal) });
  }
  return selectPrimaryMac(nics);
}

/** Reads every interface under <root>/sys/class/net (Node hides interfaces without IP addresses); undefined if sysfs is unreadable. */
async function sysfsNics(root: string): Promise<NicInfo[] | undefined> {
  const base = path.join(root, "sys/class/net");
  let names: string[];
  try {
    names = await fs.readdir(base);
  } catch {
    return undefined;
  }
  const nics: NicInfo[] = [];
  for (const name of names) {
    const dir = path.join(base, name);
    const [address, flags, type] = await Promise.all(
      ["address", "flags", "type"].map((f) => fs.readFile(path.join(dir, f), "utf8").then((s) => s.trim(), () => undefined)),
    );
    if (address === undefined) continue;
    const typeNum = type === undefined ? NaN : Number.parseInt(type, 10);
    if (TUNNEL_TYPES.has(typeNum)) continue;
    const flagNum = flags === undefined ? 0 : Number.parseInt(flags.replace(/^0x/i, ""), 16);
    nics.push({ name, mac: address, loopback: (flagNum & IFF_LOOPBACK) !== 0 });
  }
  return nics;
}
