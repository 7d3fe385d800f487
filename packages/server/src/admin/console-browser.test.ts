/**
 * The web console in a real browser: Debian's Chromium driven by
 * playwright-core (never a downloaded browser), against a real server with
 * the console built by `npm install`. An operator signs in, approves a
 * pending imprint enrollment and sees the device get its certificate,
 * revokes that certificate and finds it in the CRL, and reads the expiry
 * chart; a viewer sees no actions. Each step saves a screenshot under
 * test-results/.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { buildCsr, generateKeyPair, parseCertificate, parseCrl, serialToHex } from "@tessera/pki";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { RunningServer } from "../server.js";
import { request } from "../test-support.js";
import { HandDevice, DAYS } from "../protocols/imprint/test-kit.js";
import { adminServer } from "./test-kit.js";
import { DEFAULT_CONSOLE_DIR } from "./console.js";

const CHROMIUM = process.env.TESSERA_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = path.resolve(process.cwd(), "test-results");
const missing = !fs.existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : !fs.existsSync(path.join(DEFAULT_CONSOLE_DIR, "index.html")) ? "console not built (npm run build:web)" : undefined;
// Under CI a missing browser or console is a failure, not a skip.
const skip = missing && process.env.CI !== "true" ? missing : false;

describe("web console in Chromium", { skip }, () => {
  let server: RunningServer;
  let secret: string;
  let tokens: { admin: string; editor: string; viewer: string };
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  before(async () => {
    if (missing) throw new Error(missing);
    ({ server, secret, tokens } = await adminServer());
    // Certificates expiring in 5, 5 and 40 days, so the 90-day chart has bars to read.
    for (const days of [5, 5, 40]) {
      const privateKey = generateKeyPair("ec-p256").privateKey;
      await server.authority.issue({
        csr: buildCsr({ subject: [{ type: "CN", value: `short-${days}` }], privateKey }), protocol: "cli", profile: "device",
        credential: { kind: "operator", actor: "test" }, subject: [{ type: "CN", value: `short-${days}` }], validitySeconds: days * 86_400,
      });
    }
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    // The server's certificate chains to Tessera's own CA, which this browser profile does not trust.
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1366, height: 768 } });
    page = await context.newPage();
    fs.mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await server?.close(100);
  });

  const url = (hash = "") => `${server.url.replace("://localhost", "://127.0.0.1")}/admin/${hash}`;
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `console-${name}.png`), fullPage: true });

  test("sign in with a token: the session cookie is HttpOnly, Secure and SameSite=Strict", async () => {
    await page.goto(url());
    await page.getByLabel("Access token").fill(tokens.admin);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
    assert.match(await page.getByTestId("signed-in-as").innerText(), /alice/);
    const cookie = (await context.cookies()).find((c) => c.name === "tessera_session");
    assert.ok(cookie, "session cookie set");
    assert.deepEqual([cookie.httpOnly, cookie.secure, cookie.sameSite, cookie.path], [true, true, "Strict", "/admin"]);
    assert.equal(await page.evaluate(() => document.cookie), "", "scripts cannot read it");
    await shot("1-overview");
  });

  let device: HandDevice;
  test("approve a pending imprint enrollment: the device then gets its certificate", async () => {
    device = new HandDevice(server);
    const pending = await device.enroll(secret, "line-4-unit");
    assert.equal(pending.status, 202, pending.text);
    await page.getByRole("link", { name: "Requests" }).click();
    await page.getByRole("heading", { name: "Enrollment requests", level: 1 }).waitFor();
    const table = page.getByTestId("requests-table");
    await table.getByText(device.fingerprint.slice(0, 12), { exact: false }).first().waitFor().catch(() => undefined);
    await shot("2-requests");
    await table.getByRole("button", { name: "Approve" }).first().click();
    await page.getByTestId("status-region").getByText(/approved/i).waitFor();
    const r = await device.enroll(secret, "line-4-unit");
    assert.equal(r.status, 200, r.text);
    const serial = serialToHex(parseCertificate(device.cert).serial);
    const decided = await server.store.getRequest((JSON.parse(pending.text) as { request_id: string }).request_id);
    assert.deepEqual([decided?.status, decided?.decidedBy], ["approved", "token:alice"]);

    await page.getByRole("link", { name: "Devices" }).click();
    await page.getByRole("searchbox", { name: "Search devices" }).fill(device.serverId);
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByTestId("devices-table").getByRole("link", { name: device.serverId }).click();
    await page.getByRole("heading", { name: `Device ${device.serverId}`, level: 1 }).waitFor();
    await page.getByTestId("device-certificates").getByText(serial).waitFor();
    await shot("3-device");
  });

  test("revoke the certificate from the device page: it is on the CRL", async () => {
    const serial = serialToHex(parseCertificate(device.cert).serial);
    const row = page.getByTestId("device-certificates").getByRole("row").filter({ hasText: serial });
    await row.getByRole("button", { name: "Revoke" }).click();
    const dialog = page.getByRole("dialog", { name: `Revoke certificate ${serial}` });
    await dialog.getByLabel("Reason").selectOption("keyCompromise");
    await shot("4-revoke-dialog");
    await dialog.getByRole("button", { name: "Revoke certificate" }).click();
    await row.getByText(/revoked/i).first().waitFor();
    const crl = parseCrl((await request(server, "/crl")).body);
    assert.equal(crl.revoked.get(serial)?.reason, "keyCompromise");
    await shot("5-revoked");
  });

  test("the expiry chart shows the certificates expiring in the next 90 days", async () => {
    await page.getByRole("link", { name: "Overview" }).click();
    const chart = page.getByTestId("expiry-chart").locator("svg[role=img]");
    await chart.waitFor();
    const label = (await chart.getAttribute("aria-label")) ?? "";
    // Issued above: 5, 5 and 40 days; the device certificates live a year.
    assert.match(label, /\b3 certificates expire in the next 90 days, 2 of them within 7 days/, label);
    await page.getByTestId("expiry-chart").getByText("Show data table").click();
    const cells = await page.getByTestId("expiry-chart").locator("table tbody tr").count();
    assert.ok(cells >= 2, `data table rows: ${cells}`);
    const tooSoon = new Date(Date.now() + 5 * DAYS).toISOString().slice(0, 10);
    await page.getByTestId("expiry-chart").getByText(tooSoon).first().waitFor();
    await shot("6-expiry-chart");
  });

  test("a viewer sees the queue but no actions", async () => {
    const viewerContext = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const p = await viewerContext.newPage();
      const pending = new HandDevice(server);
      assert.equal((await pending.enroll(secret)).status, 202);
      await p.goto(url());
      await p.getByLabel("Access token").fill(tokens.viewer);
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
      await p.goto(url("#/requests"));
      await p.getByTestId("requests-table").getByRole("row").nth(1).waitFor();
      assert.equal(await p.getByRole("button", { name: "Approve" }).count(), 0);
      await p.screenshot({ path: path.join(SHOTS, "console-7-viewer.png"), fullPage: true });
    } finally {
      await viewerContext.close();
    }
  });
});
