import { api } from "../api";
import { ActivityChart, CountTable, ExpiryChart } from "../components/Charts";
import { Time } from "../components/Time";
import { num, relative } from "../format";
import { useLoad, useTitle } from "../hooks";
import { href } from "../router";
import { useApp } from "../state";

function Stat(props: { label: string; value: number | undefined; link?: string; testId: string; warn?: boolean }) {
  return (
    <div class={`stat${props.warn ? " stat-warn" : ""}`} data-testid={props.testId}>
      <dt>{props.label}</dt>
      <dd>{props.link && props.value !== undefined ? <a href={props.link}>{num(props.value)}</a> : num(props.value)}</dd>
    </div>
  );
}

/** Counts from /overview and the fleet health charts from /health. */
export function OverviewPage() {
  useTitle("Overview");
  const { notifyError } = useApp();
  const ov = useLoad((s) => api.overview(s), [], notifyError);
  const health = useLoad((s) => api.health(90, s), [], notifyError);
  const o = ov.data;
  const h = health.data;

  // The server may leave out days with nothing; the charts want every day of the window.
  const expiry = h ? fillDays(today(), 90, h.expiry, (day) => ({ day, count: 0 })) : [];
  const activity = h ? fillDays(addDays(today(), -29), 30, h.activity, (day) => ({ day, issued: 0, renewed: 0, revoked: 0 })) : [];

  const byProtocol = new Map<string, number>();
  for (const f of h?.failures ?? []) byProtocol.set(f.protocol, (byProtocol.get(f.protocol) ?? 0) + f.count);

  return (
    <>
      <h1 tabIndex={-1}>Overview</h1>
      <section aria-labelledby="ov-counts" class="card">
        <h2 id="ov-counts">Fleet</h2>
        {ov.loading && !o ? <p class="muted">Loading…</p> : null}
        <dl class="stats">
          <Stat testId="stat-devices-total" label="Devices" value={o?.devices.total} link={href(["devices"])} />
          <Stat testId="stat-devices-active" label="Active" value={o?.devices.active} link={href(["devices"], { status: "active" })} />
          <Stat testId="stat-devices-pending" label="Pending" value={o?.devices.pending} link={href(["devices"], { status: "pending" })} />
          <Stat testId="stat-devices-disabled" label="Disabled" value={o?.devices.disabled} link={href(["devices"], { status: "disabled" })} />
          <Stat testId="stat-devices-revoked" label="Revoked" value={o?.devices.revoked} link={href(["devices"], { status: "revoked" })} />
          <Stat testId="stat-certificates-valid" label="Valid certificates" value={o?.certificates.valid} link={href(["certificates"], { status: "valid" })} />
          <Stat
            testId="stat-expiring-7d"
            label="Expiring within 7 days"
            value={o?.certificates.expiringIn7Days}
            link={href(["devices"], { expiring: "7", sort: "notAfter", order: "asc" })}
            warn={(o?.certificates.expiringIn7Days ?? 0) > 0}
          />
          <Stat testId="stat-pending-requests" label="Pending requests" value={o?.pendingRequests} link={href(["requests"])} warn={(o?.pendingRequests ?? 0) > 0} />
        </dl>
        {o && (
          <dl class="props ca">
            <dt>CA subject</dt>
            <dd class="mono">{o.ca.subject}</dd>
            <dt>CA expires</dt>
            <dd>
              <Time iso={o.ca.notAfter} /> <span class="muted">({relative(o.ca.notAfter)})</span>
            </dd>
            <dt>CA fingerprint (SHA-256)</dt>
            <dd class="mono wrap">{o.ca.fingerprint}</dd>
          </dl>
        )}
      </section>

      <section class="card" aria-label="Certificate expiry">
        {h ? <ExpiryChart expiry={expiry} /> : <p class="muted">{health.loading ? "Loading fleet health…" : "Fleet health is not available."}</p>}
      </section>

      {h && (
        <>
          <section class="card" aria-label="Activity">
            <ActivityChart activity={activity} />
          </section>
          <section class="card" aria-labelledby="ov-failures">
            <h2 id="ov-failures">Enrollment failures, last 30 days</h2>
            <div class="two-col">
              <CountTable
                testId="failures-by-code"
                caption="Failures by error code"
                keyLabel="Error code"
                rows={[...h.failuresByCode].sort((a, b) => b.count - a.count).map((f) => ({ key: f.code, count: f.count }))}
                empty="No failed enrollments in the last 30 days."
              />
              {byProtocol.size > 0 && (
                <CountTable
                  testId="failures-by-protocol"
                  caption="Failures by protocol"
                  keyLabel="Protocol"
                  rows={[...byProtocol].sort((a, b) => b[1] - a[1]).map(([key, count]) => ({ key, count }))}
                  empty=""
                />
              )}
            </div>
          </section>
        </>
      )}
    </>
  );
}

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/**
 * Every day from `from` for `n` days, with the server's rows where it has
 * them. The window grows to cover any row outside it (the server's clock or
 * its idea of "the last 30 days" may differ by a day), so no row is lost.
 */
function fillDays<T extends { day: string }>(from: string, n: number, rows: T[], zero: (day: string) => T): T[] {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const sorted = rows.map((r) => r.day).sort();
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  const start = first !== undefined && first < from ? first : from;
  const windowEnd = addDays(from, n - 1);
  const end = last !== undefined && last > windowEnd ? last : windowEnd;
  const out: T[] = [];
  for (let day = start; day <= end && out.length < 400; day = addDays(day, 1)) out.push(byDay.get(day) ?? zero(day));
  return out;
}
