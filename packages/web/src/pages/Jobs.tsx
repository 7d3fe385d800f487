import { useEffect, useId, useRef, useState } from "preact/hooks";
import { ApiError, api, canEdit, type Credential, type Job, toApiError } from "../api";
import { Badge } from "../components/Badge";
import { Time } from "../components/Time";
import { DataTable } from "../components/DataTable";
import { ConfirmDialog } from "../components/Dialog";
import { ReasonSelect } from "../components/ReasonSelect";
import { num, reasonLabel } from "../format";
import { useLoad, useTitle } from "../hooks";
import type { Route } from "../router";
import { useApp } from "../state";

const KIND_LABEL: Record<string, string> = {
  "crl-rebuild": "Rebuild CRL",
  "revoke-bootstrap-batch": "Revoke bootstrap batch",
};

function jobLabel(j: Job, creds: Map<string, Credential>): string {
  const base = KIND_LABEL[j.kind] ?? j.kind;
  const credId = typeof j.params.credentialId === "string" ? j.params.credentialId : null;
  if (!credId) return base;
  return `${base}: ${creds.get(credId)?.name ?? credId}`;
}

function resultText(j: Job): string {
  if (j.error) return j.error;
  if (!j.result) return "";
  return Object.entries(j.result)
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(", ");
}

/** An <optgroup> of bootstrap credentials to choose from, with their state and use count. */
function CredentialOptions({ label, items }: { label: string; items: Credential[] | undefined }) {
  return (
    <optgroup label={label}>
      {(items ?? []).map((c) => (
        <option key={c.id} value={c.id}>
          {c.name} ({c.state}, {num(c.useCount)} uses)
        </option>
      ))}
    </optgroup>
  );
}

/** Long operations: start them, and follow their progress (GET /jobs/{id} every second while running). */
export function JobsPage({ route }: { route: Route }) {
  useTitle("Jobs");
  const { role, notifyError, notifySuccess } = useApp();
  const editor = canEdit(role);
  const list = useLoad((s) => api.jobs(s), [], notifyError);
  const creds = useLoad(
    async (s) => {
      const [certs, secrets] = await Promise.all([api.credentials("certificate", s), api.credentials("secret", s)]);
      return { certs: certs.items, secrets: secrets.items };
    },
    [],
    notifyError,
  );
  const credMap = new Map<string, Credential>();
  for (const c of [...(creds.data?.certs ?? []), ...(creds.data?.secrets ?? [])]) credMap.set(c.id, c);

  const [credentialId, setCredentialId] = useState(route.params.get("credential") ?? "");
  const [reason, setReason] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [starting, setStarting] = useState(false);
  const credSelectId = useId();

  const jobs = list.data?.items ?? [];
  const running = jobs.filter((j) => j.status === "running").map((j) => j.id);
  const runningKey = running.join(",");
  const announced = useRef(new Set<string>());

  // Poll each running job once a second until it finishes.
  useEffect(() => {
    if (running.length === 0) return;
    let cancelled = false;
    const ac = new AbortController();
    const timer = setTimeout(async () => {
      const updates = await Promise.all(running.map((id) => api.job(id, ac.signal).catch(() => null)));
      if (cancelled) return;
      list.set((old) => {
        if (!old) return old;
        const byId = new Map(updates.filter((u): u is Job => u !== null).map((u) => [u.id, u]));
        return { items: old.items.map((j) => byId.get(j.id) ?? j) };
      });
      if (updates.some((u) => u && u.status !== "running")) creds.reload();
      for (const u of updates) {
        if (u && u.status !== "running" && !announced.current.has(u.id)) {
          announced.current.add(u.id);
          if (u.status === "succeeded") notifySuccess(`Job “${KIND_LABEL[u.kind] ?? u.kind}” succeeded.`);
          else notifyError(new ApiError(0, "TESSERA_CONSOLE_JOB_FAILED", `Job “${KIND_LABEL[u.kind] ?? u.kind}” failed: ${u.error ?? "no reason given"}`));
        }
      }
    }, 1000);
    return () => {
      cancelled = true;
      clearTimeout(timer);
      ac.abort();
    };
    // list.data changes after every poll, which schedules the next one.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runningKey, list.data]);

  const start = async (body: Parameters<typeof api.startJob>[0]) => {
    const job = await api.startJob(body);
    list.set((old) => ({ items: [job, ...(old?.items ?? []).filter((j) => j.id !== job.id)] }));
    notifySuccess(`Job “${KIND_LABEL[job.kind] ?? job.kind}” started.`);
  };

  const chosen = credMap.get(credentialId);

  return (
    <>
      <h1 tabIndex={-1}>Jobs</h1>
      {!editor && <p class="note">Your role ({role}) can follow jobs but not start them.</p>}
      {editor && (
        <div class="two-col">
          <section class="card" aria-labelledby="job-crl">
            <h2 id="job-crl">Rebuild CRL</h2>
            <p>Signs a fresh CRL now instead of waiting for the next scheduled one.</p>
            <button
              type="button"
              class="primary"
              disabled={starting}
              onClick={async () => {
                setStarting(true);
                try {
                  await start({ kind: "crl-rebuild" });
                } catch (e) {
                  notifyError(toApiError(e));
                } finally {
                  setStarting(false);
                }
              }}
            >
              Rebuild CRL
            </button>
          </section>
          <section class="card" aria-labelledby="job-batch">
            <h2 id="job-batch">Revoke bootstrap batch</h2>
            <form
              onSubmit={(e) => {
                e.preventDefault();
                if (credentialId) setConfirming(true);
              }}
            >
              <p>Revokes a bootstrap credential, then every device enrolled with it and their certificates.</p>
              <div class="field">
                <label for={credSelectId}>Bootstrap credential</label>
                <select id={credSelectId} value={credentialId} required onChange={(e) => setCredentialId((e.currentTarget as HTMLSelectElement).value)}>
                  <option value="">Choose a credential…</option>
                  <CredentialOptions label="Bootstrap certificates" items={creds.data?.certs} />
                  <CredentialOptions label="Build secrets" items={creds.data?.secrets} />
                </select>
              </div>
              <ReasonSelect value={reason} onChange={setReason} allowDefault="Server default" />
              <button type="submit" class="danger" disabled={!credentialId}>
                Revoke bootstrap batch
              </button>
            </form>
          </section>
        </div>
      )}

      <section aria-labelledby="job-list">
        <div class="card-head">
          <h2 id="job-list">Recent jobs</h2>
          <button type="button" onClick={() => list.reload()}>
            Refresh
          </button>
        </div>
        <DataTable testId="jobs-table" busy={list.loading} columns={["Job", "Status", "Progress", "Started", "Finished", "Result"]}>
          {jobs.map((j) => {
            const label = jobLabel(j, credMap);
            const pct = j.total > 0 ? Math.round((j.done / j.total) * 100) : j.status === "running" ? null : 100;
            return (
              <tr key={j.id} data-job-id={j.id}>
                <th scope="row">
                  {label}
                  <br />
                  <span class="muted small">by {j.createdBy}</span>
                </th>
                <td>
                  <Badge value={j.status} />
                </td>
                <td class="progress-cell nowrap">
                  <progress
                    max={j.total > 0 ? j.total : 1}
                    {...(j.total > 0 ? { value: j.done } : j.status === "running" ? {} : { value: 1 })}
                    aria-label={`Progress of ${label}`}
                  />
                  <span class="small">
                    {j.total > 0 ? `${num(j.done)} / ${num(j.total)}` : j.status === "running" ? "starting…" : ""}
                    {pct !== null && j.total > 0 ? ` (${pct}%)` : ""}
                  </span>
                </td>
                <td><Time iso={j.createdAt} /></td>
                <td>
                  <Time iso={j.finishedAt} />
                </td>
                <td class={`small wrap ${j.error ? "error-text" : ""}`}>{resultText(j) || <span class="muted">—</span>}</td>
              </tr>
            );
          })}
        </DataTable>
        {!list.loading && jobs.length === 0 && !list.error && <p class="empty">No jobs yet.</p>}
      </section>

      {confirming && (
        <ConfirmDialog
          onStale={list.reload}
          testId="revoke-batch-dialog"
          title={`Revoke bootstrap batch ${chosen?.name ?? credentialId}`}
          confirmLabel="Start revoking"
          danger
          onClose={() => setConfirming(false)}
          onConfirm={async () => {
            await start({ kind: "revoke-bootstrap-batch", credentialId, reason: reason || undefined });
            setCredentialId("");
          }}
        >
          <p>
            This revokes the credential <strong>{chosen?.name ?? credentialId}</strong>
            {chosen ? ` (used ${num(chosen.useCount)} times)` : ""}, then every device enrolled with it and all their certificates
            {reason ? ` (reason: ${reasonLabel(reason)})` : ""}. It cannot be undone.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}
