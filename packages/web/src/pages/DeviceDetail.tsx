import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { api, canEdit, type Certificate, toApiError } from "../api";
import { Badge } from "../components/Badge";
import { Time, TimeWithNote } from "../components/Time";
import { DataTable } from "../components/DataTable";
import { ConfirmDialog } from "../components/Dialog";
import { download } from "../components/OnceSecret";
import { ReasonSelect } from "../components/ReasonSelect";
import { RevokeCertificateDialog } from "../components/RevokeCertificateDialog";
import { dateTime, reasonLabel, relative } from "../format";
import { useLoad, useTitle } from "../hooks";
import { href } from "../router";
import { useApp } from "../state";

interface DeviceActionDialogProps {
  id: string;
  verb: "Revoke" | "Disable";
  testId: string;
  danger?: boolean;
  /** Does it; answers what to announce. */
  run(): Promise<string>;
  reload(): void;
  onClose(): void;
  children: ComponentChildren;
}

/** "Revoke device ID" / "Disable device ID": confirms, runs, announces, and reloads the page (also after a failed attempt). */
function DeviceActionDialog({ id, verb, testId, danger, run, reload, onClose, children }: DeviceActionDialogProps) {
  const { notifySuccess } = useApp();
  return (
    <ConfirmDialog
      onStale={reload}
      testId={testId}
      title={`${verb} device ${id}`}
      confirmLabel={`${verb} device`}
      danger={danger}
      onClose={onClose}
      onConfirm={async () => {
        notifySuccess(await run());
        reload();
      }}
    >
      {children}
    </ConfirmDialog>
  );
}

type Pending = { kind: "cert"; cert: Certificate } | { kind: "device" } | { kind: "disable" };

/** One device: properties, attributes, certificate lineage (newest first), requests and actions. */
export function DeviceDetailPage({ id }: { id: string }) {
  useTitle(`Device ${id}`);
  const { role, notifyError, notifySuccess } = useApp();
  const detail = useLoad((s) => api.device(id, s), [id], notifyError);
  const [pending, setPending] = useState<Pending | null>(null);
  // The reason for revoking the device (the certificate dialog keeps its own).
  const [reason, setReason] = useState("cessationOfOperation");
  const [busy, setBusy] = useState(false);
  const editor = canEdit(role);
  const d = detail.data?.device;

  const enable = async () => {
    setBusy(true);
    try {
      await api.enableDevice(id);
      notifySuccess(`Device ${id} enabled.`);
      detail.reload();
    } catch (e) {
      notifyError(toApiError(e));
    } finally {
      setBusy(false);
    }
  };

  const pem = async (serial: string) => {
    try {
      const c = await api.certificate(serial);
      download(`${serial}.pem`, c.pem, "application/x-pem-file");
    } catch (e) {
      notifyError(toApiError(e));
    }
  };

  return (
    <>
      <p class="crumbs">
        <a href={href(["devices"])}>Devices</a> <span aria-hidden="true">›</span>
      </p>
      <h1 tabIndex={-1}>
        Device <span class="mono">{id}</span>
      </h1>
      {detail.loading && !d && <p class="muted">Loading…</p>}
      {detail.error && !d && <p class="empty">This device could not be loaded ({detail.error.code}).</p>}
      {d && (
        <>
          <section class="card" aria-labelledby="dev-props">
            <div class="card-head">
              <h2 id="dev-props">
                Status <Badge value={d.status} />
              </h2>
              {editor && (
                <div class="actions" role="group" aria-label="Device actions">
                  {d.status === "disabled" ? (
                    <button type="button" onClick={enable} disabled={busy}>
                      Enable device
                    </button>
                  ) : d.status !== "revoked" ? (
                    <button type="button" onClick={() => setPending({ kind: "disable" })} disabled={busy}>
                      Disable device
                    </button>
                  ) : null}
                  {d.status !== "revoked" && (
                    <button
                      type="button"
                      class="danger"
                      onClick={() => {
                        setReason("cessationOfOperation");
                        setPending({ kind: "device" });
                      }}
                    >
                      Revoke device
                    </button>
                  )}
                </div>
              )}
            </div>
            <dl class="props" data-testid="device-properties">
              <dt>Device ID</dt>
              <dd class="mono">{d.id}</dd>
              <dt>Fingerprint</dt>
              <dd class="mono wrap">{d.fingerprint ?? "—"}</dd>
              <dt>Protocol</dt>
              <dd>{d.protocol}</dd>
              <dt>Last seen</dt>
              <dd>
                {d.lastSeenAt ? (
                  <>
                    <Time iso={d.lastSeenAt} /> <span class="muted">({relative(d.lastSeenAt)})</span>
                    {d.lastIp && (
                      <>
                        {" "}
                        from <span class="mono">{d.lastIp}</span>
                      </>
                    )}
                  </>
                ) : (
                  "never"
                )}
              </dd>
              <dt>Subject</dt>
              <dd class="mono wrap">{d.subject ?? "—"}</dd>
              <dt>Current certificate</dt>
              <dd>
                {d.currentSerial ? (
                  <>
                    <span class="mono">{d.currentSerial}</span> <Badge value={d.certificateStatus} />, expires <Time iso={d.notAfter} />{" "}
                    <span class="muted">({relative(d.notAfter)})</span>
                  </>
                ) : (
                  "none"
                )}
              </dd>
              <dt>Created</dt>
              <dd><Time iso={d.createdAt} /></dd>
              <dt>Updated</dt>
              <dd><Time iso={d.updatedAt} /></dd>
            </dl>
          </section>

          <section class="card" aria-labelledby="dev-attrs">
            <h2 id="dev-attrs">Attributes</h2>
            {Object.keys(d.attributes).length === 0 ? (
              <p class="muted">No attributes.</p>
            ) : (
              <DataTable testId="device-attributes" class="compact" scroll={false} columns={["Name", "Value"]}>
                {Object.entries(d.attributes).map(([k, v]) => (
                  <tr key={k}>
                    <th scope="row">{k}</th>
                    <td class="mono wrap">{v}</td>
                  </tr>
                ))}
              </DataTable>
            )}
          </section>

          <section class="card" aria-labelledby="dev-certs">
            <h2 id="dev-certs">Certificates (newest first)</h2>
            <DataTable testId="device-certificates" columns={["Serial", "Status", "Issued", "Valid until", "Profile", "Key", "Revocation", "Actions"]}>
              {detail.data!.certificates.map((c, i) => (
                <tr key={c.serial}>
                  <th scope="row" class="mono" id={`cert-${i}`}>
                    {c.serial}
                  </th>
                  <td>
                    <Badge value={c.status} />
                  </td>
                  <td>
                    <TimeWithNote iso={c.issuedAt} note={`via ${c.protocol}`} />
                  </td>
                  <td>
                    <TimeWithNote iso={c.notAfter} />
                  </td>
                  <td>{c.profile}</td>
                  <td>{c.keyType}</td>
                  <td class="small">
                    {c.revokedAt ? (
                      <>
                        <Time iso={c.revokedAt} />
                        <br />
                        {c.revocationReason ? reasonLabel(c.revocationReason) : ""}
                      </>
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                  <td class="actions-cell">
                    <button type="button" aria-describedby={`cert-${i}`} onClick={() => pem(c.serial)}>
                      PEM
                    </button>
                    {editor && c.status !== "revoked" && (
                      <button type="button" class="danger" aria-describedby={`cert-${i}`} onClick={() => setPending({ kind: "cert", cert: c })}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </DataTable>
            {detail.data!.certificates.length === 0 && <p class="muted">No certificates.</p>}
          </section>

          {detail.data!.requests.length > 0 && (
            <section class="card" aria-labelledby="dev-reqs">
              <h2 id="dev-reqs">Enrollment requests</h2>
              <DataTable testId="device-requests" scroll={false} columns={["Created", "Protocol", "Status", "Decided", "Certificate"]}>
                {detail.data!.requests.map((r) => (
                  <tr key={r.id}>
                    <td><Time iso={r.createdAt} /></td>
                    <td>{r.protocol}</td>
                    <td>
                      <Badge value={r.status} />
                    </td>
                    <td class="small">
                      {r.decidedAt ? `${r.decidedBy ?? "?"}, ${dateTime(r.decidedAt)}` : "—"}
                      {r.reason ? ` (${r.reason})` : ""}
                    </td>
                    <td class="mono">{r.certificateSerial ?? "—"}</td>
                  </tr>
                ))}
              </DataTable>
            </section>
          )}
        </>
      )}

      {pending?.kind === "cert" && <RevokeCertificateDialog certificate={pending.cert} onClose={() => setPending(null)} reload={detail.reload} />}
      {pending?.kind === "device" && (
        <DeviceActionDialog
          id={id}
          verb="Revoke"
          testId="revoke-device-dialog"
          danger
          reload={detail.reload}
          onClose={() => setPending(null)}
          run={async () => {
            const res = await api.revokeDevice(id, reason);
            return `Device ${id} revoked; ${res.revoked.length} certificate(s) revoked.`;
          }}
        >
          <p>The device and all its unexpired certificates are revoked. It cannot enroll or renew again.</p>
          <ReasonSelect value={reason} onChange={setReason} />
        </DeviceActionDialog>
      )}
      {pending?.kind === "disable" && (
        <DeviceActionDialog
          id={id}
          verb="Disable"
          testId="disable-device-dialog"
          reload={detail.reload}
          onClose={() => setPending(null)}
          run={async () => {
            await api.disableDevice(id);
            return `Device ${id} disabled.`;
          }}
        >
          <p>A disabled device cannot renew or enroll until it is enabled again. Its certificates stay valid.</p>
        </DeviceActionDialog>
      )}
    </>
  );
}
