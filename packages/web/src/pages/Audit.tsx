import { useEffect, useState } from "preact/hooks";
import { api, type AuditFilter } from "../api";
import { DataTable } from "../components/DataTable";
import { TextField } from "../components/Field";
import { FilterButtons, FilterForm } from "../components/Filters";
import { Time } from "../components/Time";
import { dateTime, utcInputToIso } from "../format";
import { useLoad, useTitle } from "../hooks";
import { href, navigate, type Route, withParams } from "../router";
import { useApp } from "../state";

const LIMITS = [50, 100, 200, 500];

/** Audit log: filters, newest first, "Older" pages with the server's `next` cursor, export as JSON lines. */
export function AuditPage({ route }: { route: Route }) {
  useTitle("Audit log");
  const { notifyError } = useApp();
  const p = route.params;
  const applied = {
    action: p.get("action") ?? "",
    actor: p.get("actor") ?? "",
    target: p.get("target") ?? "",
    since: p.get("since") ?? "",
    until: p.get("until") ?? "",
  };
  const before = p.get("before") ?? "";
  const limitParam = Number(p.get("limit"));
  const limit = LIMITS.includes(limitParam) ? limitParam : 50;

  const [form, setForm] = useState(applied);
  const appliedKey = JSON.stringify(applied);
  useEffect(() => setForm(applied), [appliedKey]); // eslint-disable-line react-hooks/exhaustive-deps
  // Cursors of the newer pages seen in this visit, for "Newer".
  const [newer, setNewer] = useState<string[]>([]);

  const filter: AuditFilter = {
    action: applied.action || undefined,
    actor: applied.actor || undefined,
    target: applied.target || undefined,
    since: utcInputToIso(applied.since),
    until: utcInputToIso(applied.until),
  };
  const list = useLoad((s) => api.audit({ ...filter, before: before || undefined, limit }, s), [appliedKey, before, limit], notifyError);
  const items = list.data?.items ?? [];
  const next = list.data?.next ?? null;

  const field = (k: keyof typeof applied) => (v: string) => setForm((f) => ({ ...f, [k]: v }));

  return (
    <>
      <h1 tabIndex={-1}>Audit log</h1>
      <FilterForm
        label="Audit filters"
        onSubmit={() => {
          setNewer([]);
          navigate(href(["audit"], { ...form, limit: limit === 50 ? null : limit }));
        }}
      >
        <TextField label="Action" value={form.action} onValue={field("action")} placeholder="certificate.revoked" autoComplete="off" />
        <TextField label="Actor" value={form.actor} onValue={field("actor")} placeholder="token:alice" hint="End with * for a prefix, e.g. token:*" autoComplete="off" />
        <TextField label="Target" value={form.target} onValue={field("target")} hint="Serial, device id, request or credential id" autoComplete="off" />
        <TextField label="Since (UTC)" type="datetime-local" value={form.since} onValue={field("since")} />
        <TextField label="Until (UTC)" type="datetime-local" value={form.until} onValue={field("until")} />
        <div class="field">
          <label for="audit-limit">Events per page</label>
          <select
            id="audit-limit"
            value={String(limit)}
            onChange={(e) => {
              setNewer([]);
              navigate(withParams(route, { limit: Number((e.currentTarget as HTMLSelectElement).value), before: null }));
            }}
          >
            {LIMITS.map((n) => (
              <option key={n} value={String(n)}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <FilterButtons
          submit="Apply filters"
          onClear={() => {
            setNewer([]);
            navigate(href(["audit"]));
          }}
        />
        <a class="button-link" href={api.auditExportUrl(filter)} download="tessera-audit.jsonl">
          Export JSON lines
        </a>
      </FilterForm>
      <DataTable testId="audit-table" caption="Audit events, newest first" busy={list.loading} columns={["Time", "Actor", "Action", "Target", "Detail"]}>
        {items.map((ev) => {
          const detail = JSON.stringify(ev.detail ?? {});
          return (
            <tr key={ev.id}>
              <td class="nowrap"><Time iso={ev.at} /></td>
              <td class="mono">{ev.actor}</td>
              <td class="mono">{ev.action}</td>
              <td class="mono wrap">{ev.target}</td>
              <td class="mono wrap small detail">
                {detail === "{}" ? (
                  <span class="muted">—</span>
                ) : detail.length > 160 ? (
                  <details>
                    <summary>{detail.slice(0, 100)}…</summary>
                    <pre>{JSON.stringify(ev.detail, null, 2)}</pre>
                  </details>
                ) : (
                  detail
                )}
              </td>
            </tr>
          );
        })}
      </DataTable>
      {!list.loading && items.length === 0 && !list.error && <p class="empty">No audit events match.</p>}
      <nav class="pager" aria-label="Pages of audit events">
        <p class="pager-summary">
          {items.length > 0
            ? `${items.length} events, ${dateTime(items[0]!.at)} back to ${dateTime(items[items.length - 1]!.at)}${next === null ? " (the oldest)" : ""}`
            : ""}
        </p>
        <div class="pager-buttons">
          <button
            type="button"
            disabled={!before}
            onClick={() => {
              setNewer([]);
              navigate(withParams(route, { before: null }));
            }}
          >
            Newest
          </button>
          <button
            type="button"
            disabled={newer.length === 0}
            onClick={() => {
              const prev = newer[newer.length - 1] ?? "";
              setNewer((n) => n.slice(0, -1));
              navigate(withParams(route, { before: prev || null }));
            }}
          >
            Newer
          </button>
          <button
            type="button"
            disabled={next === null || list.loading}
            onClick={() => {
              setNewer((n) => [...n, before]);
              navigate(withParams(route, { before: String(next) }));
            }}
          >
            Older
          </button>
        </div>
      </nav>
    </>
  );
}
