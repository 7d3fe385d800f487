import { useId, useRef, useState } from "preact/hooks";
import { api, canAdmin, canEdit, type Credential, type CredentialKind, toApiError } from "../api";
import { Badge } from "../components/Badge";
import { Time, TimeWithNote } from "../components/Time";
import { DataTable } from "../components/DataTable";
import { ConfirmDialog } from "../components/Dialog";
import { TextField } from "../components/Field";
import { OnceSecret, type SecretItem } from "../components/OnceSecret";
import { num } from "../format";
import { useLoad, useTitle } from "../hooks";
import { href, navigate, type Route } from "../router";
import { useApp } from "../state";

const TABS: { kind: CredentialKind; label: string; singular: string }[] = [
  { kind: "secret", label: "Build secrets", singular: "build secret" },
  { kind: "certificate", label: "Bootstrap certificates", singular: "bootstrap certificate" },
  { kind: "password", label: "EST users", singular: "EST user" },
];

/** Bootstrap credentials in three tabs (WAI-ARIA tabs: arrow keys move between them). */
export function CredentialsPage({ route }: { route: Route }) {
  useTitle("Credentials");
  const kind = (TABS.find((t) => t.kind === route.segments[1])?.kind ?? "secret") as CredentialKind;
  const base = useId();
  const tabRefs = useRef<(HTMLButtonElement | null)[]>([]);
  const select = (i: number, focus: boolean) => {
    const t = TABS[(i + TABS.length) % TABS.length]!;
    navigate(href(["credentials", t.kind]), true);
    if (focus) requestAnimationFrame(() => tabRefs.current[(i + TABS.length) % TABS.length]?.focus());
  };
  const idx = TABS.findIndex((t) => t.kind === kind);
  const tab = TABS[idx]!;
  return (
    <>
      <h1 tabIndex={-1}>Bootstrap credentials</h1>
      <div
        role="tablist"
        aria-label="Credential kinds"
        class="tabs"
        onKeyDown={(e) => {
          if (e.key === "ArrowRight") select(idx + 1, true);
          else if (e.key === "ArrowLeft") select(idx - 1, true);
          else if (e.key === "Home") select(0, true);
          else if (e.key === "End") select(TABS.length - 1, true);
          else return;
          e.preventDefault();
        }}
      >
        {TABS.map((t, i) => (
          <button
            key={t.kind}
            ref={(el) => {
              tabRefs.current[i] = el;
            }}
            type="button"
            role="tab"
            id={`${base}-tab-${t.kind}`}
            aria-selected={t.kind === kind}
            aria-controls={`${base}-panel`}
            tabIndex={t.kind === kind ? 0 : -1}
            onClick={() => select(i, false)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`${base}-panel`} aria-labelledby={`${base}-tab-${kind}`} class="tabpanel">
        <CredentialTab key={kind} kind={kind} label={tab.label} singular={tab.singular} />
      </div>
    </>
  );
}

type Created = { title: string; note: string; items: SecretItem[] };

function CredentialTab({ kind, label, singular }: { kind: CredentialKind; label: string; singular: string }) {
  const { role, notifyError, notifySuccess } = useApp();
  const list = useLoad((s) => api.credentials(kind, s), [kind], notifyError);
  const [created, setCreated] = useState<Created | null>(null);
  const [revoking, setRevoking] = useState<Credential | null>(null);
  const admin = canAdmin(role);
  const editor = canEdit(role);
  const items = list.data?.items ?? [];
  const headId = useId();

  return (
    <>
      {!admin && <p class="note">Your role ({role}) can view credentials; only an admin can create or revoke them.</p>}
      {admin && (
        <CreateForm
          kind={kind}
          singular={singular}
          onCreated={(c) => {
            setCreated(c);
            list.reload();
          }}
        />
      )}
      {created && <OnceSecret title={created.title} note={created.note} items={created.items} onDismiss={() => setCreated(null)} />}

      <h2 id={headId}>{label}</h2>
      <DataTable
        testId={`credentials-${kind}-table`}
        labelledBy={headId}
        busy={list.loading}
        columns={[
          "Name",
          kind === "password" ? "Label" : "Scope",
          <th scope="col" class="num">
            Uses
          </th>,
          "Expires",
          "Created",
          "State",
          (admin || (editor && kind !== "password")) && "Actions",
        ]}
      >
        {items.map((c, i) => (
          <tr key={c.id}>
            <th scope="row" id={`cred-${kind}-${i}`}>
              {c.name}
            </th>
            <td>{c.scope || <span class="muted">—</span>}</td>
            <td class="num">
              {num(c.useCount)}
              {c.maxUses !== null ? ` / ${num(c.maxUses)}` : ""}
              {c.maxUses === null && <span class="visually-hidden"> (no limit)</span>}
            </td>
            <td>
              <TimeWithNote iso={c.expiresAt} none="never" />
            </td>
            <td><Time iso={c.createdAt} /></td>
            <td>
              <Badge value={c.state} />
              {c.revokedAt && <span class="small muted"> <Time iso={c.revokedAt} /></span>}
            </td>
            {(admin || (editor && kind !== "password")) && (
              <td class="actions-cell">
                {admin && c.state !== "revoked" && (
                  <button type="button" class="danger" aria-describedby={`cred-${kind}-${i}`} onClick={() => setRevoking(c)}>
                    Revoke
                  </button>
                )}
                {editor && kind !== "password" && (
                  <a class="button-link" href={href(["jobs"], { credential: c.id })} aria-describedby={`cred-${kind}-${i}`}>
                    Revoke batch…
                  </a>
                )}
              </td>
            )}
          </tr>
        ))}
      </DataTable>
      {!list.loading && items.length === 0 && !list.error && <p class="empty">No {label.toLowerCase()} yet.</p>}

      {revoking && (
        <ConfirmDialog
          onStale={list.reload}
          testId="revoke-credential-dialog"
          title={`Revoke ${singular} ${revoking.name}`}
          confirmLabel={`Revoke ${singular}`}
          danger
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await api.revokeCredential(revoking.id);
            notifySuccess(`${singular[0]!.toUpperCase()}${singular.slice(1)} ${revoking.name} revoked.`);
            list.reload();
          }}
        >
          <p>
            It can no longer be used to enroll.
            {kind === "certificate" && " The bootstrap certificate also goes on the CRL."} Devices already enrolled with it keep their certificates; to revoke those too,
            use “Revoke bootstrap batch” on the Jobs page.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function CreateForm({ kind, singular, onCreated }: { kind: CredentialKind; singular: string; onCreated(c: Created): void }) {
  const { notifyError, notifySuccess } = useApp();
  const [name, setName] = useState("");
  const [scope, setScope] = useState("");
  const [expiresIn, setExpiresIn] = useState("");
  const [maxUses, setMaxUses] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const headId = useId();

  const submit = async (e: Event) => {
    e.preventDefault();
    const n = name.trim();
    if (!n) return;
    setBusy(true);
    try {
      if (kind === "password") {
        const res = await api.createEstUser({ name: n, label: scope.trim() || undefined, password: password || undefined });
        onCreated({
          title: `EST user ${res.credential.name} created`,
          note: "The password is shown only now. Copy it or download it before leaving this page.",
          items: [{ label: "Password", value: res.password, filename: `${res.credential.name}.password.txt` }],
        });
      } else {
        const input = {
          name: n,
          scope: scope.trim() || undefined,
          expiresIn: expiresIn.trim() || undefined,
          maxUses: maxUses.trim() ? Number(maxUses) : undefined,
        };
        if (kind === "secret") {
          const res = await api.createSecret(input);
          onCreated({
            title: `Build secret ${res.credential.name} created`,
            note: "The secret is shown only now; the server keeps only its hash. Copy it or download it before leaving this page.",
            items: [{ label: "Build secret", value: res.secret, filename: `${res.credential.name}.secret.txt` }],
          });
        } else {
          const res = await api.createBootstrapCertificate(input);
          onCreated({
            title: `Bootstrap certificate ${res.credential.name} created`,
            note: "The private key is shown only now and is not kept by the server. Download the three files before leaving this page.",
            items: [
              { label: "Certificate", value: res.certificatePem, filename: `${res.credential.name}.crt.pem`, mime: "application/x-pem-file" },
              { label: "Private key", value: res.privateKeyPem, filename: `${res.credential.name}.key.pem`, mime: "application/x-pem-file" },
              { label: "CA certificate", value: res.caPem, filename: "tessera-ca.pem", mime: "application/x-pem-file" },
            ],
          });
        }
      }
      notifySuccess(`${singular[0]!.toUpperCase()}${singular.slice(1)} ${n} created.`);
      setName("");
      setScope("");
      setExpiresIn("");
      setMaxUses("");
      setPassword("");
    } catch (err) {
      notifyError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card create" aria-labelledby={headId} onSubmit={submit}>
      <h2 id={headId}>New {singular}</h2>
      <div class="form-row">
        <TextField label="Name" value={name} onValue={setName} required maxLength={200} autoComplete="off" />
        {kind === "password" ? (
          <>
            <TextField label="Label (optional)" value={scope} onValue={setScope} autoComplete="off" />
            <TextField
              label="Password (optional)"
              type="password"
              value={password}
              onValue={setPassword}
              autoComplete="new-password"
              hint="Left empty, the server generates one."
            />
          </>
        ) : (
          <>
            <TextField label="Scope (optional)" value={scope} onValue={setScope} hint="Protocol or label it may be used for; * for any." autoComplete="off" />
            <TextField label="Expires in (optional)" value={expiresIn} onValue={setExpiresIn} hint="A duration such as 90d or 12h." autoComplete="off" />
            <TextField label="Maximum uses (optional)" type="number" min={1} step={1} value={maxUses} onValue={setMaxUses} />
          </>
        )}
      </div>
      <button type="submit" class="primary" disabled={busy}>
        {busy ? "Creating…" : `Create ${singular}`}
      </button>
    </form>
  );
}
