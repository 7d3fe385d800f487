/**
 * Composes the admin front-end from the authority and the store: operator
 * tokens and console sessions, the admin service, bootstrap credentials,
 * jobs, and the routes that expose them (docs/admin-api.md).
 */
import type { Logger } from "pino";
import type { Authority } from "../authority/authority.js";
import { BootstrapCredentials } from "../authority/bootstrap-credentials.js";
import { OperatorTokens } from "../authority/operator-tokens.js";
import type { Store } from "../authority/ports.js";
import type { Clock } from "../authority/runtime.js";
import type { ProtocolModule } from "../http/app.js";
import { AdminAuth } from "./auth.js";
import { DEFAULT_CONSOLE_DIR } from "./console.js";
import { JobRunner } from "./jobs.js";
import { adminRoutes } from "./routes.js";
import { AdminService, type RequestSigner } from "./service.js";

/** The admin module and its job runner (the server waits for running jobs before it closes the store). */
export function adminModule(deps: {
  authority: Authority;
  store: Store;
  clock: Clock;
  log: Logger;
  signers?: Record<string, RequestSigner>;
  consoleDir?: string;
  /** Failed enrollments counted but not yet written: flushed before the health figures are read. */
  failures?: { flush(): Promise<void> };
}): { module: ProtocolModule; jobs: JobRunner } {
  const now = () => deps.clock.now();
  const { authority, store } = deps;
  const credentials = new BootstrapCredentials(store, authority, now);
  const jobs = new JobRunner({ authority, credentials, store, now, log: deps.log.child({ component: "jobs" }) });
  const module = adminRoutes({
    auth: new AdminAuth(new OperatorTokens(store, now), store, now),
    service: new AdminService({ authority, store, now, signers: deps.signers, beforeHealth: deps.failures && (() => deps.failures!.flush()) }),
    credentials,
    jobs,
    authority,
    now,
    consoleDir: deps.consoleDir ?? process.env.TESSERA_CONSOLE_DIR ?? DEFAULT_CONSOLE_DIR,
  });
  return { module, jobs };
}
