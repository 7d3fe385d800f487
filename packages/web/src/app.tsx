/**
 * The console shell: session bootstrap (GET /session after a reload), the
 * message regions, the header and navigation, and the hash routes.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { type ApiError, api, onUnauthenticated, type Session } from "./api";
import { href, type Route, useRoute } from "./router";
import { AppProvider, type AppContext, type Notice } from "./state";
import { SignIn } from "./pages/SignIn";
import { OverviewPage } from "./pages/Overview";
import { RequestsPage } from "./pages/Requests";
import { DevicesPage } from "./pages/Devices";
import { DeviceDetailPage } from "./pages/DeviceDetail";
import { CertificatesPage } from "./pages/Certificates";
import { CredentialsPage } from "./pages/Credentials";
import { AuditPage } from "./pages/Audit";
import { JobsPage } from "./pages/Jobs";
import { NotFoundPage } from "./pages/NotFound";

const NAV: { path: string; label: string }[] = [
  { path: "overview", label: "Overview" },
  { path: "requests", label: "Requests" },
  { path: "devices", label: "Devices" },
  { path: "certificates", label: "Certificates" },
  { path: "credentials", label: "Credentials" },
  { path: "audit", label: "Audit log" },
  { path: "jobs", label: "Jobs" },
];

function focusMain(): void {
  const h = document.querySelector<HTMLElement>("#main h1");
  (h ?? document.getElementById("main"))?.focus();
}

function Messages({ notices, dismiss }: { notices: Notice[]; dismiss(id: number): void }) {
  const errors = notices.filter((n) => n.kind === "error");
  const oks = notices.filter((n) => n.kind === "success");
  return (
    <div class="messages">
      <div role="alert" aria-live="assertive" aria-atomic="false" data-testid="error-region" class="message-region">
        {errors.map((n) => (
          <div class="notice notice-error" key={n.id}>
            <p>
              {n.code && <strong class="code">{n.code}</strong>}
              {n.code ? ": " : ""}
              {n.text}
            </p>
            <button type="button" class="link" onClick={() => dismiss(n.id)} aria-label={`Dismiss error ${n.code ?? ""}`.trim()}>
              Dismiss
            </button>
          </div>
        ))}
      </div>
      <div role="status" aria-live="polite" data-testid="status-region" class="message-region">
        {oks.map((n) => (
          <div class="notice notice-ok" key={n.id}>
            <p>{n.text}</p>
          </div>
        ))}
      </div>
    </div>
  );
}

function Page({ route }: { route: Route }) {
  const [first, second] = route.segments;
  switch (first ?? "overview") {
    case "overview":
      return <OverviewPage />;
    case "requests":
      return <RequestsPage route={route} />;
    case "devices":
      return second ? <DeviceDetailPage id={second} /> : <DevicesPage route={route} />;
    case "certificates":
      return <CertificatesPage route={route} />;
    case "credentials":
      return <CredentialsPage route={route} />;
    case "audit":
      return <AuditPage route={route} />;
    case "jobs":
      return <JobsPage route={route} />;
    default:
      return <NotFoundPage />;
  }
}

export function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [notices, setNotices] = useState<Notice[]>([]);
  const nextId = useRef(1);
  const sessionRef = useRef(session);
  sessionRef.current = session;

  const showError = useCallback((e: ApiError) => {
    const id = nextId.current++;
    setNotices((ns) => [...ns.filter((n) => n.kind === "error").slice(-2), ...ns.filter((n) => n.kind === "success"), { id, kind: "error", code: e.code, text: e.message }]);
  }, []);
  // Pages report errors here; a 401 already took the console back to sign-in with its own message.
  const notifyError = useCallback((e: ApiError) => {
    if (e.status !== 401) showError(e);
  }, [showError]);
  const notifySuccess = useCallback((text: string) => {
    const id = nextId.current++;
    setNotices((ns) => [...ns.filter((n) => n.kind === "error"), ...ns.filter((n) => n.kind === "success").slice(-2), { id, kind: "success", text }]);
    setTimeout(() => setNotices((ns) => ns.filter((n) => n.id !== id)), 10_000);
  }, []);
  const dismiss = useCallback((id: number) => setNotices((ns) => ns.filter((n) => n.id !== id)), []);

  // The session: cookie is HttpOnly, so ask the server after every load.
  useEffect(() => {
    const ac = new AbortController();
    api.session(ac.signal).then(
      (s) => setSession(s),
      (e: unknown) => {
        if (ac.signal.aborted) return;
        setSession(null);
        const err = e as ApiError;
        if (err && err.status !== 401) showError(err);
      },
    );
    return () => ac.abort();
  }, [showError]);

  // Any 401 later on: the session ended (expired, token revoked) → sign in again.
  useEffect(() => {
    onUnauthenticated(() => {
      if (sessionRef.current) {
        const id = nextId.current++;
        setNotices([{ id, kind: "error", code: "TESSERA_ERR_ADMIN_UNAUTHENTICATED", text: "Your session has ended. Sign in again." }]);
      }
      setSession(null);
    });
    return () => onUnauthenticated(null);
  }, []);

  // Moving to another page: drop old errors, focus the new page's heading.
  // Credential tabs are one page (switching tabs keeps focus on the tab).
  const pathKey = route.segments[0] === "credentials" ? "credentials" : route.segments.join("/");
  const firstRender = useRef(true);
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    setNotices((ns) => ns.filter((n) => n.kind === "success"));
    requestAnimationFrame(focusMain);
  }, [pathKey]);

  const signOut = useCallback(() => {
    api.signOut().then(
      () => {
        setSession(null);
        setNotices([]);
      },
      (e: ApiError) => showError(e),
    );
  }, [showError]);

  const ctx: AppContext | null = useMemo(
    () => (session ? { session, role: session.role, notifyError, notifySuccess, signOut } : null),
    [session, notifyError, notifySuccess, signOut],
  );

  const current = route.segments[0] ?? "overview";

  return (
    <div class={`layout ${session ? "signed-in" : "signed-out"}`}>
      <a
        class="skip-link"
        href="#main"
        onClick={(e) => {
          e.preventDefault(); // the hash is the router's
          focusMain();
        }}
      >
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href={href(["overview"])}>
          Tessera <span>console</span>
        </a>
        {session && (
          <div class="who">
            <span data-testid="signed-in-as">
              Signed in as <strong>{session.name}</strong> <span class={`role role-${session.role}`}>{session.role}</span>
            </span>
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          </div>
        )}
      </header>
      {session && ctx ? (
        <nav class="sidenav" aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.path}>
                <a href={href([n.path])} aria-current={current === n.path ? "page" : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      ) : null}
      <main id="main" tabIndex={-1}>
        <Messages notices={notices} dismiss={dismiss} />
        {session === undefined ? (
          <p class="muted" role="status">
            Loading…
          </p>
        ) : session === null || !ctx ? (
          <SignIn
            onSignedIn={(s) => {
              setNotices([]);
              setSession(s);
              requestAnimationFrame(focusMain);
            }}
            onError={showError}
          />
        ) : (
          <AppProvider value={ctx}>
            <Page route={route} key={pathKey} />
          </AppProvider>
        )}
      </main>
    </div>
  );
}
