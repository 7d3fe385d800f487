import { useEffect, useId, useState } from "preact/hooks";
import { api, type DeviceSort, type DeviceStatus, type SortOrder } from "../api";
import { Badge } from "../components/Badge";
import { Time, TimeWithNote } from "../components/Time";
import { DataTable } from "../components/DataTable";
import { SelectField, TextField } from "../components/Field";
import { FilterButtons, FilterForm } from "../components/Filters";
import { Pager, pageParams } from "../components/Pager";
import { sortColumns } from "../components/SortHeader";
import { relative } from "../format";
import { useLoad, useTitle } from "../hooks";
import { href, navigate, type Route, withParams } from "../router";
import { useApp } from "../state";

const STATUSES: [string, string][] = [
  ["", "Any status"],
  ["active", "Active"],
  ["pending", "Pending"],
  ["disabled", "Disabled"],
  ["revoked", "Revoked"],
];
export const PROTOCOLS: [string, string][] = [
  ["", "Any protocol"],
  ["imprint", "imprint"],
  ["liteboot", "liteboot"],
  ["est", "EST"],
  ["caramel", "Caramel"],
  ["mainflux", "Mainflux"],
  ["cli", "CLI"],
];
const SORTS: DeviceSort[] = ["id", "status", "protocol", "createdAt", "lastSeenAt", "notAfter"];
const DAY = 86_400_000;

/** Devices: server-side search, filters, sort and paging (never the whole fleet). */
export function DevicesPage({ route }: { route: Route }) {
  useTitle("Devices");
  const { notifyError } = useApp();
  const p = route.params;
  const q = p.get("q") ?? "";
  const status = p.get("status") ?? "";
  const protocol = p.get("protocol") ?? "";
  const expiring = p.get("expiring") === "7";
  const sortParam = p.get("sort") as DeviceSort | null;
  const sort = sortParam && SORTS.includes(sortParam) ? sortParam : undefined;
  const order: SortOrder = p.get("order") === "desc" ? "desc" : "asc";
  const { offset, limit } = pageParams(p);

  const [text, setText] = useState(q);
  useEffect(() => setText(q), [q]);
  const expId = useId();

  const list = useLoad(
    (s) =>
      api.devices(
        {
          q: q || undefined,
          status: status as DeviceStatus | "",
          protocol,
          expiresBefore: expiring ? new Date(Date.now() + 7 * DAY).toISOString() : undefined,
          sort,
          order: sort ? order : undefined,
          offset,
          limit,
        },
        s,
      ),
    [q, status, protocol, expiring, sort, order, offset, limit],
    notifyError,
  );

  const set = (changes: Record<string, string | number | boolean | null>) => navigate(withParams(route, { ...changes, offset: null }));
  const col = sortColumns<DeviceSort>(sort, order, (field, o) => set({ sort: field, order: o }));
  const items = list.data?.items ?? [];
  const filtered = Boolean(q || status || protocol || expiring);

  return (
    <>
      <h1 tabIndex={-1}>Devices</h1>
      <FilterForm label="Device filters" onSubmit={() => set({ q: text.trim() })}>
        <TextField
          label="Search devices"
          type="search"
          value={text}
          onValue={setText}
          hint="Device id, fingerprint, certificate serial or SHA-256 (exact), or part of the subject"
          class="wide"
        />
        <SelectField label="Status" value={status} options={STATUSES} onValue={(v) => set({ status: v })} />
        <SelectField label="Protocol" value={protocol} options={PROTOCOLS} onValue={(v) => set({ protocol: v })} />
        <div class="field check">
          <input id={expId} type="checkbox" checked={expiring} onChange={(e) => set({ expiring: (e.currentTarget as HTMLInputElement).checked ? "7" : null })} />
          <label for={expId}>Expiring within 7 days</label>
        </div>
        <FilterButtons submit="Search" onClear={filtered ? () => navigate(href(["devices"])) : undefined} />
      </FilterForm>
      <DataTable
        testId="devices-table"
        caption={`Devices${sort ? `, sorted by ${sort} ${order === "asc" ? "ascending" : "descending"}` : ""}`}
        busy={list.loading}
        columns={[
          col("id", "Device ID"),
          col("status", "Status"),
          col("protocol", "Protocol"),
          "Subject",
          col("notAfter", "Certificate expires"),
          col("lastSeenAt", "Last seen", "desc"),
          col("createdAt", "Created", "desc"),
        ]}
      >
        {items.map((d) => (
          <tr key={d.id}>
            <th scope="row" class="mono">
              <a href={href(["devices", d.id])}>{d.id}</a>
            </th>
            <td>
              <Badge value={d.status} />
            </td>
            <td>{d.protocol}</td>
            <td class="mono wrap small subject">{d.subject ?? <span class="muted">—</span>}</td>
            <td>
              {d.notAfter ? (
                <>
                  <Time iso={d.notAfter} />
                  <br />
                  <span class={`small ${new Date(d.notAfter).getTime() - Date.now() < 7 * DAY ? "warn-text" : "muted"}`}>{relative(d.notAfter)}</span>
                  {d.certificateStatus && d.certificateStatus !== "valid" && (
                    <>
                      {" "}
                      <Badge value={d.certificateStatus} />
                    </>
                  )}
                </>
              ) : (
                <span class="muted">no certificate</span>
              )}
            </td>
            <td>
              <TimeWithNote iso={d.lastSeenAt} none="never" />
            </td>
            <td><Time iso={d.createdAt} /></td>
          </tr>
        ))}
      </DataTable>
      {!list.loading && items.length === 0 && !list.error && <p class="empty">No devices match.</p>}
      {list.data && <Pager noun="devices" total={list.data.total} offset={offset} limit={limit} onPage={(o, l) => navigate(withParams(route, { offset: o || null, limit: l === 50 ? null : l }))} />}
    </>
  );
}
