/**
 * The original's shell client flow (spec caramel.md §6.3, client-example.sh
 * and caramel-refresh.sh) with curl and openssl against the running server:
 * key and CSR with openssl, GET 404 → POST → 202, the operator signs, GET
 * 200 (kept with --remote-time), `curl -z` then transfers nothing (304),
 * and the refresh script's status check.
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { pemEncode } from "@tessera/pki";
import type { RunningServer } from "../../server.js";
import { startTestServer, tempDir } from "../../test-support.js";

let server: RunningServer;
let dir: string;
let dataDir: string;
let url: string;

before(async () => {
  ({ server, dataDir } = await startTestServer());
  url = server.url.replace("://localhost", "://127.0.0.1");
  dir = tempDir("tessera-caramel-shell-");
  fs.writeFileSync(path.join(dir, "root.crt"), pemEncode("CERTIFICATE", server.authority.ca.root.der));
});
after(() => server.close(100));

const run = promisify(execFile);
const sh = (script: string) => execFileSync("sh", ["-c", script], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }).toString();
/** curl as client-example.sh calls it; returns the HTTP status. Asynchronous: the server runs in this process. */
async function curl(...args: string[]): Promise<string> {
  const { stdout } = await run("curl", ["--silent", "--show-error", "--remote-time", "--connect-timeout", "30", "--max-time", "60", "--cacert", "root.crt", "-w", "%{http_code}", ...args], { cwd: dir, encoding: "utf8" });
  return stdout;
}

test("client-example.sh's flow, then caramel-refresh.sh's check", async () => {
  sh("openssl genrsa -out client.key 2048 2>/dev/null && openssl req -new -key client.key -subj '/O=Tessera/CN=shell-client' -out client.csr");
  const sha = sh("sha256sum client.csr | cut -d' ' -f1").trim();
  assert.equal(await curl("-o", "client.tmp", `${url}//${sha}`), "404", "unknown: the script posts next (its URL may contain //)");
  assert.equal(await curl("-o", "post.out", "--data-binary", "@client.csr", `${url}/${sha}`), "202");
  assert.equal(await curl("-o", "client.tmp", `${url}/${sha}`), "202", "pending: the script waits");

  const { main } = await import("../../cli/main.js");
  assert.equal(await main(["caramel", "sign", sha], { out: () => undefined, err: () => undefined }, { TESSERA_DATA_DIR: dataDir, TESSERA_LOG_LEVEL: "silent", TESSERA_LITEBOOT_LISTEN: "off" }), 0);

  assert.equal(await curl("-o", "client.crt", `${url}/${sha}`), "200");
  assert.equal(sh("openssl verify -CAfile root.crt client.crt").trim(), "client.crt: OK");
  const before = fs.statSync(path.join(dir, "client.crt"));
  // With a certificate in hand the script sends its key, certificate and -z <crt> (If-Modified-Since = the file's time).
  assert.equal(await curl("--key", "client.key", "--cert", "client.crt", "-z", "client.crt", "-o", "client.new", `${url}/${sha}`), "304");
  assert.equal(fs.existsSync(path.join(dir, "client.new")), false, "nothing transferred");
  assert.equal(fs.statSync(path.join(dir, "client.crt")).mtimeMs, before.mtimeMs);

  // caramel-refresh.sh: GET each CSR's hash; 200 → overwrite the certificate, anything else → listed, exit 1.
  fs.writeFileSync(path.join(dir, "refresh.conf"), "client.csr;client.crt\n");
  const refresh = `
    set -e
    status=0
    while IFS=';' read -r csr crt rest; do
      sum=$(sha256sum "$csr" | cut -d' ' -f1)
      code=$(curl --silent --show-error --connect-timeout 30 --max-time 60 --cacert root.crt -o "$crt.tmp" -w '%{http_code}' "$1/$sum")
      if [ "$code" = 200 ]; then mv "$crt.tmp" "$crt"; else echo "$csr => HTTP Status: $code"; status=1; fi
    done < refresh.conf
    [ $status = 0 ] && echo "all done"
    exit $status`;
  const ok = await run("sh", ["-c", refresh, "refresh", url], { cwd: dir, encoding: "utf8" });
  assert.equal(ok.stdout.trim(), "all done");
  sh("openssl req -new -key client.key -subj '/O=Tessera/CN=shell-client-2' -out pending.csr");
  fs.writeFileSync(path.join(dir, "refresh.conf"), "client.csr;client.crt\npending.csr;pending.crt\n");
  const pendingSha = sh("sha256sum pending.csr | cut -d' ' -f1").trim();
  assert.equal(await curl("-o", "post.out", "--data-binary", "@pending.csr", `${url}/${pendingSha}`), "202");
  await assert.rejects(run("sh", ["-c", refresh, "refresh", url], { cwd: dir, encoding: "utf8" }), (err: { code?: number; stdout?: string }) => err.code === 1 && /pending\.csr => HTTP Status: 202/.test(err.stdout ?? ""));
});
