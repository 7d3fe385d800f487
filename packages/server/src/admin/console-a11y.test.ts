/**
 * The web console's accessibility, checked by a machine: axe-core (Deque's
 * rule engine, the one browser audits use) runs in Debian's Chromium on
 * every page of the console, with data on it and with a dialog open, against
 * the WCAG 2.0/2.1 A and AA rules (labels, names, roles, contrast, landmarks,
 * headings, keyboard focus order). Any violation fails the test with the
 * rule, the elements and axe's explanation. A screen reader is still not
 * tried; this is what can be checked without one.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { buildCsr, generateKeyPair } from "@tessera/pki";
import type { Browser, Page } from "playwright-core";
import type { RunningServer } from "../server.js";
import { HandDevice } from "../protocols/imprint/test-kit.js";
import { adminServer, api } from "./test-kit.js";
import { DEFAULT_CONSOLE_DIR } from "./console.js";

const CHROMIUM = process.env.TESSERA_CHROMIUM ?? "/usr/bin/chromium";
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const missing = !fs.existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : !fs.existsSync(path.join(DEFAULT_CONSOLE_DIR, "index.html")) ? "console not built (npm run build:web)" : undefined;
// Under CI a missing browser or console is a failure, not a skip.
const skip = missing && process.env.CI !== "true" ? missing : false;

/** What axe reports per violated rule. */
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[]; failureSummary?: string }>;
}

describe("web console accessibility (axe-core in Chromium)", { skip }, () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let deviceId: string;

  before(async () => {
    if (missing) throw new Error(missing);
    const admin = await adminServer();
    server = admin.server;
    // Something on every page: a pending request, an enrolled device with a certificate that
    // expires this week (a bar in the chart), audit events.
    assert.equal((await new HandDevice(server).enroll(admin.secret, "pending-unit")).status, 202);
    const device = new HandDevice(server);
    const pending = await device.enroll(admin.secret, "a11y-unit");
    assert.equal(pending.status, 202, pending.text);
    const requestId = (JSON.parse(pending.text) as { request_id: string }).request_id;
    assert.equal((await api(server, "POST", `/requests/${requestId}/approve`, { auth: { token: admin.tokens.admin } })).status, 200);
    assert.equal((await device.enroll(admin.secret, "a11y-unit")).status, 200);
    deviceId = device.serverId;
    const privateKey = generateKeyPair("ec-p256").privateKey;
    await server.authority.issue({
      csr: buildCsr({ subject: [{ type: "CN", value: "short-lived" }], privateKey }), protocol: "cli", profile: "device",
      credential: { kind: "operator", actor: "test" }, subject: [{ type: "CN", value: "short-lived" }], validitySeconds: 5 * 86_400,
    });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    // axe is injected as a script; the console's CSP (script-src 'self') would refuse it, so this
    // one context bypasses CSP. The console itself runs exactly as served.
    const context = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: { width: 1366, height: 768 } });
    page = await context.newPage();
    await page.goto(url());
    await page.getByLabel("Access token").fill(admin.tokens.admin);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
  });
  after(async () => {
    await browser?.close();
    await server?.close(100);
  });

  const url = (hash = "") => `${server.url.replace("://localhost", "://127.0.0.1")}/admin/${hash}`;

  /** axe's violations on the page as it is; also checks that axe really ran its rules. */
  async function scan(): Promise<AxeViolation[]> {
    await page.addScriptTag({ path: AXE });
    const result = (await page.evaluate(async () => {
      const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: unknown[]; passes: unknown[] }> } }).axe;
      const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }, resultTypes: ["violations"] });
      return { violations: r.violations, passed: r.passes.length };
    })) as { violations: AxeViolation[]; passed: number };
    assert.ok(result.passed >= 10, `axe passed only ${result.passed} rules: did it run?`);
    return result.violations;
  }

  /** Runs axe on the page as it is and fails with every violation it finds. */
  async function audit(what: string): Promise<void> {
    const violations = await scan();
    const report = violations
      .map((v) => `${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `  ${JSON.stringify(n.target)} ${n.failureSummary ?? ""}`).join("\n")}`)
      .join("\n");
    assert.equal(violations.length, 0, `${what}:\n${report}`);
  }

  /** Opens a route and waits for its level-1 heading (the page has loaded its data). */
  async function open(hash: string, heading: string | RegExp): Promise<void> {
    await page.goto(url(hash));
    await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
    // Let the page's data requests settle (tables, charts).
    await page.waitForLoadState("networkidle");
  }

  test("the sign-in page", async () => {
    const other = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true });
    try {
      const p = await other.newPage();
      await p.goto(url());
      await p.getByLabel("Access token").waitFor();
      const saved = page;
      page = p;
      try {
        await audit("sign-in");
      } finally {
        page = saved;
      }
    } finally {
      await other.close();
    }
  });

  const pages: Array<[string, string, string | RegExp]> = [
    ["overview, with its charts", "#/overview", "Overview"],
    ["requests, with a pending one", "#/requests", "Enrollment requests"],
    ["devices", "#/devices", "Devices"],
    ["certificates", "#/certificates", "Certificates"],
    ["credentials: build secrets", "#/credentials/secret", "Bootstrap credentials"],
    ["credentials: bootstrap certificates", "#/credentials/certificate", "Bootstrap credentials"],
    ["credentials: EST users", "#/credentials/password", "Bootstrap credentials"],
    ["audit log", "#/audit", "Audit log"],
    ["jobs", "#/jobs", "Jobs"],
  ];
  for (const [what, hash, heading] of pages) {
    test(`${what}`, async () => {
      await open(hash, heading);
      await audit(what);
    });
  }

  test("the check is not blind: an unnamed button and an unlabelled field added to a page are caught", async () => {
    await open("#/overview", "Overview");
    await page.evaluate(() => {
      const main = document.querySelector("main") ?? document.body;
      main.insertAdjacentHTML("beforeend", '<button type="button"></button><input type="text">');
    });
    try {
      const found = new Set((await scan()).map((v) => v.id));
      assert.ok(found.has("button-name") && found.has("label"), [...found].join(", "));
    } finally {
      // A hash route change keeps the document: reload so the next pages start clean.
      await page.reload();
      await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
    }
  });

  test("a device page, and its revoke dialog open", async () => {
    await open(`#/devices/${encodeURIComponent(deviceId)}`, `Device ${deviceId}`);
    await audit("device page");
    await page.getByTestId("device-certificates").getByRole("button", { name: "Revoke" }).first().click();
    await page.getByRole("dialog").waitFor();
    await audit("revoke dialog");
  });
});
