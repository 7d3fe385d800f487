import { useState } from "preact/hooks";
import { api, canEdit, type EnrollmentRequest, type RequestStatus, toApiError } from "../api";
import { Badge } from "../components/Badge";
import { Time, TimeWithNote } from "../components/Time";
import { DataTable } from "../components/DataTable";
import { ConfirmDialog } from "../components/Dialog";
import { SelectField, TextField } from "../components/Field";
import { FilterForm } from "../components/Filters";
import { Pager, pageParams } from "../components/Pager";
import { useLoad, useTitle } from "../hooks";
import { href, navigate, type Route, withParams } from "../router";
import { useApp } from "../state";

const STATUSES: [string, string][] = [
  ["pending", "Pending"],
  ["approved", "Approved"],
  ["rejected", "Rejected"],
  ["all", "Any status"],
];
const PROTOCOLS: [string, string][] = [
  ["", "Any protocol"],
  ["imprint", "imprint"],
  ["est", "EST"],
  ["caramel", "Caramel"],
];

/** The enrollment queue (imprint, EST, Caramel): approve, or reject with a reason. */
export function RequestsPage({ route }: { route: Route }) {
  useTitle("Requests");
  const { role, notifyError, notifySuccess } = useApp();
  const p = route.params;
  const status = p.get("status") ?? "pending";
  const protocol = p.get("protocol") ?? "";
  const { offset, limit } = pageParams(p);
  const list = useLoad(
    (s) => api.requests({ status: status === "all" ? "" : (status as RequestStatus), protocol, offset, limit }, s),
    [status, protocol, offset, limit],
    notifyError,
  );
  const [busy, setBusy] = useState<string | null>(null);
  const [rejecting, setRejecting] = useState<EnrollmentRequest | null>(null);
  const [reason, setReason] = useState("");
  const editor = canEdit(role);

  const approve = async (r: EnrollmentRequest) => {
    setBusy(r.id);
    try {
      const res = await api.approveRequest(r.id);
      notifySuccess(
        res.certificate
          ? `Request ${r.id} approved; certificate ${res.certificate.serial} issued.`
          : `Request ${r.id} approved; the device fetches its certificate on its next attempt.`,
      );
      list.reload();
    } catch (e) {
      notifyError(toApiError(e));
      list.reload();
    } finally {
      setBusy(null);
    }
  };

  const items = list.data?.items ?? [];
  return (
    <>
      <h1 tabIndex={-1}>Enrollment requests</h1>
      {!editor && <p class="note">Your role ({role}) can view requests but not approve or reject them.</p>}
      <FilterForm label="Request filters">
        <SelectField label="Status" value={status} options={STATUSES} onValue={(v) => navigate(withParams(route, { status: v === "pending" ? null : v, offset: null }))} />
        <SelectField label="Protocol" value={protocol} options={PROTOCOLS} onValue={(v) => navigate(withParams(route, { protocol: v, offset: null }))} />
        <button type="button" onClick={() => list.reload()}>
          Refresh
        </button>
      </FilterForm>
      <DataTable
        testId="requests-table"
        caption="Enrollment requests, oldest first"
        busy={list.loading}
        columns={["Created", "Protocol", "Device", "Subject", "Profile", "Status", "Decision", editor && "Actions"]}
      >
        {items.map((r, i) => (
          <tr key={r.id}>
            <td>
              <TimeWithNote iso={r.createdAt} />
            </td>
            <td>{r.protocol}</td>
            <td id={`req-${i}-dev`}>{r.deviceId ? <a href={href(["devices", r.deviceId])}>{r.deviceId}</a> : <span class="muted">—</span>}</td>
            <td class="mono wrap subject" id={`req-${i}-subj`}>
              {r.subject}
            </td>
            <td>{r.profile}</td>
            <td>
              <Badge value={r.status} />
            </td>
            <td class="small">
              {r.decidedAt ? (
                <>
                  {r.decidedBy ?? "?"}, <Time iso={r.decidedAt} />
                  {r.reason && (
                    <>
                      <br />
                      Reason: {r.reason}
                    </>
                  )}
                  {r.certificateSerial && (
                    <>
                      <br />
                      Serial <span class="mono">{r.certificateSerial}</span>
                    </>
                  )}
                </>
              ) : (
                <span class="muted">—</span>
              )}
            </td>
            {editor && (
              <td class="actions-cell">
                {r.status === "pending" && (
                  <>
                    <button
                      type="button"
                      class="primary"
                      disabled={busy === r.id}
                      aria-describedby={`req-${i}-subj req-${i}-dev`}
                      onClick={() => approve(r)}
                    >
                      Approve
                    </button>
                    <button
                      type="button"
                      class="danger"
                      disabled={busy === r.id}
                      aria-describedby={`req-${i}-subj req-${i}-dev`}
                      onClick={() => {
                        setReason("");
                        setRejecting(r);
                      }}
                    >
                      Reject
                    </button>
                  </>
                )}
              </td>
            )}
          </tr>
        ))}
      </DataTable>
      {!list.loading && items.length === 0 && <p class="empty">No {status === "all" ? "" : `${status} `}requests.</p>}
      {list.data && <Pager noun="requests" total={list.data.total} offset={offset} limit={limit} onPage={(o, l) => navigate(withParams(route, { offset: o || null, limit: l === 50 ? null : l }))} />}

      {rejecting && (
        <ConfirmDialog
          onStale={list.reload}
          testId="reject-dialog"
          title={`Reject request from ${rejecting.deviceId ?? rejecting.subject}`}
          confirmLabel="Reject request"
          danger
          onClose={() => setRejecting(null)}
          onConfirm={async () => {
            await api.rejectRequest(rejecting.id, reason.trim() || undefined);
            notifySuccess(`Request ${rejecting.id} rejected.`);
            list.reload();
          }}
        >
          <p class="mono wrap small">{rejecting.subject}</p>
          <TextField label="Reason (optional)" value={reason} onValue={setReason} maxLength={500} />
        </ConfirmDialog>
      )}
    </>
  );
}
