/**
 * Prometheus metrics (prom-client): process defaults plus issuance counters
 * read from the authority at scrape time, so the core stays free of metrics code.
 */
import { collectDefaultMetrics, Counter, Registry } from "prom-client";
import type { Authority } from "./authority/authority.js";

/** Builds the registry served at /metrics. */
export function createMetrics(authority: Authority): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tessera_" });
  new Counter({
    name: "tessera_certificates_stored_total",
    help: "Certificates issued and durably stored by this process.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(authority.writer.written);
    },
  });
  new Counter({
    name: "tessera_store_commits_total",
    help: "Issuance transactions committed (group commit: several certificates per transaction).",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(authority.writer.commits);
    },
  });
  return registry;
}
