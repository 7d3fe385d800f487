import { useState } from "preact/hooks";
import { api, type Certificate } from "../api";
import { reasonLabel } from "../format";
import { useApp } from "../state";
import { ConfirmDialog } from "./Dialog";
import { ReasonSelect } from "./ReasonSelect";

export interface RevokeCertificateDialogProps {
  certificate: Pick<Certificate, "serial" | "subject">;
  /** Show the certificate's subject above the warning (where the page does not show it already). */
  showSubject?: boolean;
  onClose(): void;
  /** Reloads what shows the certificate: after the revocation, or after a failed attempt. */
  reload(): void;
}

/** "Revoke certificate SERIAL" with a CRL reason (default unspecified); used on the certificate list and a device's page. */
export function RevokeCertificateDialog({ certificate, showSubject, onClose, reload }: RevokeCertificateDialogProps) {
  const { notifySuccess } = useApp();
  const [reason, setReason] = useState("unspecified");
  return (
    <ConfirmDialog
      onStale={reload}
      testId="revoke-certificate-dialog"
      title={`Revoke certificate ${certificate.serial}`}
      confirmLabel="Revoke certificate"
      danger
      onClose={onClose}
      onConfirm={async () => {
        await api.revokeCertificate(certificate.serial, reason);
        notifySuccess(`Certificate ${certificate.serial} revoked (${reasonLabel(reason)}).`);
        reload();
      }}
    >
      {showSubject && <p class="mono wrap small">{certificate.subject}</p>}
      <p>The certificate goes on the next CRL and OCSP answers “revoked”. This cannot be undone.</p>
      <ReasonSelect value={reason} onChange={setReason} />
    </ConfirmDialog>
  );
}
