import { useEffect, useState } from "preact/hooks";
import { api, canEdit, type Certificate, type CertificateSort, type CertificateStatus, type SortOrder } from "../api";
import { Badge } from "../components/Badge";
import { TimeWithNote } from "../components/Time";
import { DataTable } from "../components/DataTable";
import { SelectField, TextField } from "../components/Field";
import { FilterButtons, FilterForm } from "../components/Filters";
import { Pager, pageParams } from "../components/Pager";
import { RevokeCertificateDialog } from "../components/RevokeCertificateDialog";
import { sortColumns } from "../components/SortHeader";
import { reasonLabel } from "../format";
import { useLoad, useTitle } from "../hooks";
import { href, navigate, type Route, withParams } from "../router";
import { useApp } from "../state";

const STATUSES: [string, string][] = [
  ["", "Any status"],
  ["valid", "Valid"],
  ["revoked", "Revoked"],
  ["superseded", "Superseded"],
];
const SORTS: CertificateSort[] = ["issuedAt", "notAfter", "serial", "subject", "status"];

/** Certificates: search, sort, paging and revoke. */
export function CertificatesPage({ route }: { route: Route }) {
  useTitle("Certificates");
  const { role, notifyError } = useApp();
  const p = route.params;
  const q = p.get("q") ?? "";
  const status = p.get("status") ?? "";
  const deviceId = p.get("deviceId") ?? "";
  const sortParam = p.get("sort") as CertificateSort | null;
  const sort = sortParam && SORTS.includes(sortParam) ? sortParam : undefined;
  const order: SortOrder = p.get("order") === "asc" ? "asc" : p.get("order") === "desc" ? "desc" : sort ? "asc" : "desc";
  const { offset, limit } = pageParams(p);
  const [text, setText] = useState(q);
  useEffect(() => setText(q), [q]);
  const [revoking, setRevoking] = useState<Certificate | null>(null);
  const editor = canEdit(role);

  const list = useLoad(
    (s) => api.certificates({ q: q || undefined, status: status as CertificateStatus | "", deviceId: deviceId || undefined, sort, order: sort ? order : undefined, offset, limit }, s),
    [q, status, deviceId, sort, order, offset, limit],
    notifyError,
  );
  const set = (changes: Record<string, string | number | boolean | null>) => navigate(withParams(route, { ...changes, offset: null }));
  const col = sortColumns<CertificateSort>(sort, order, (field, o) => set({ sort: field, order: o }));
  const items = list.data?.items ?? [];

  return (
    <>
      <h1 tabIndex={-1}>Certificates</h1>
      <FilterForm label="Certificate filters" onSubmit={() => set({ q: text.trim() })}>
        <TextField
          label="Search certificates"
          type="search"
          value={text}
          onValue={setText}
          hint="Serial, certificate or key SHA-256, device id (exact), or part of the subject"
          class="wide"
        />
        <SelectField label="Status" value={status} options={STATUSES} onValue={(v) => set({ status: v })} />
        <FilterButtons submit="Search" onClear={q || status || deviceId ? () => navigate(href(["certificates"])) : undefined} />
      </FilterForm>
      {deviceId && (
        <p class="note">
          Only certificates of device <a href={href(["devices", deviceId])}>{deviceId}</a>.
        </p>
      )}
      <DataTable
        testId="certificates-table"
        caption="Certificates"
        busy={list.loading}
        columns={[
          col("serial", "Serial"),
          col("subject", "Subject"),
          col("status", "Status"),
          "Device",
          col("issuedAt", "Issued", "desc"),
          col("notAfter", "Valid until"),
          editor && "Actions",
        ]}
      >
        {items.map((c, i) => (
          <tr key={c.serial}>
            <th scope="row" class="mono" id={`crt-${i}`}>
              {c.serial}
            </th>
            <td class="mono wrap small subject">{c.subject}</td>
            <td>
              <Badge value={c.status} />
              {c.revocationReason && <span class="small muted"> {reasonLabel(c.revocationReason)}</span>}
            </td>
            <td class="mono">{c.deviceId ? <a href={href(["devices", c.deviceId])}>{c.deviceId}</a> : <span class="muted">—</span>}</td>
            <td>
              <TimeWithNote iso={c.issuedAt} note={`${c.profile}, via ${c.protocol}`} />
            </td>
            <td>
              <TimeWithNote iso={c.notAfter} />
            </td>
            {editor && (
              <td class="actions-cell">
                {c.status !== "revoked" && (
                  <button type="button" class="danger" aria-describedby={`crt-${i}`} onClick={() => setRevoking(c)}>
                    Revoke
                  </button>
                )}
              </td>
            )}
          </tr>
        ))}
      </DataTable>
      {!list.loading && items.length === 0 && !list.error && <p class="empty">No certificates match.</p>}
      {list.data && <Pager noun="certificates" total={list.data.total} offset={offset} limit={limit} onPage={(o, l) => navigate(withParams(route, { offset: o || null, limit: l === 50 ? null : l }))} />}

      {revoking && <RevokeCertificateDialog certificate={revoking} showSubject onClose={() => setRevoking(null)} reload={list.reload} />}
    </>
  );
}
