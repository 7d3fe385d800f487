/**
 * The `tessera-agent` help texts. docs/agent.md repeats HELP and every
 * command's help verbatim, and agent.test.ts keeps all three in step with the
 * dispatcher's command and option tables.
 */

/** Description of each option, shared by the command help texts so they never disagree. */
const OPTION_TEXT = {
  server: ["--server URL", "Enrollment server, e.g. https://enroll.example.com (env TESSERA_SERVER)"],
  secret: ["--secret S", "Build secret (env TESSERA_BUILD_SECRET; visible in `ps`, prefer the file or the variable)"],
  "secret-file": ["--secret-file F", "Read the build secret from the first line of F"],
  dir: ["--dir DIR", "Identity directory (env TESSERA_AGENT_DIR; default ./tessera-identity)"],
  ca: ["--ca FILE", "PEM roots trusted for enroll and challenge (default: Node's bundled roots); renew trusts ca.crt"],
  fingerprint: ["--fingerprint FP", "Use FP instead of generating the fingerprint"],
  "prefer-persisted": ["--prefer-persisted", "Keep DIR/imprint-identity once written, even if the hardware changes"],
  hostname: ["--hostname H", "Hostname sent with enrollment and used as CSR CN (default: the system's)"],
  timeout: ["--timeout D", "Deadline of each request (default 30s)"],
  threshold: ["--threshold D", "Renew when less than D is left (default 30d)"],
  "challenge-window": ["--challenge-window D", "How long after expiry the challenge (Tier 2) is tried (default 30d)"],
  force: ["--force", "Renew now over mTLS (Tier 1) whatever the threshold; no fallback"],
  interval: ["--interval D", "Time between checks (default 1h)"],
  jitter: ["--jitter J", "Spread every wait by ±J of it, 0 ≤ J < 1 (default 0.1)"],
  exec: ["--exec CMD", "Run CMD after every renewal (see above)"],
  "persist-dir": ["--persist-dir DIR", "Read/write the identity file DIR/imprint-identity (enables tiers persisted and generated)"],
  "est-server": ["--server URL", "EST server, e.g. https://est.example.com:8443; /.well-known/est is appended (env TESSERA_SERVER)"],
  label: ["--label L", "CA label: use /.well-known/est/L/… (default: the server's default CA)"],
  "est-ca": ["--ca FILE", "PEM trust anchors for the server (default: DIR/ca.crt, as 'est cacerts' writes it)"],
  "ca-fingerprint": ["--ca-fingerprint HEX", "No --ca yet: accept the CA certificates only if one has this SHA-256 fingerprint and the server's TLS certificate chains to it"],
  out: ["--out FILE", "Write the CA certificates (PEM) to FILE instead of DIR/ca.crt"],
  user: ["--user U", "HTTP Basic username, sent when the server asks for it (may be empty)"],
  password: ["--password P", "HTTP Basic password (env TESSERA_EST_PASSWORD; visible in `ps`, prefer the variable)"],
  cert: ["--cert FILE", "PEM TLS client certificate to authenticate with (e.g. a bootstrap certificate); needs --key"],
  key: ["--key FILE", "PEM private key of --cert"],
  subject: ["--subject DN", "Subject of the request, most significant first, e.g. /O=Acme/CN=dev-1 (default CN=<this host's name>)"],
  san: ["--san NAME", "subjectAltName to request: DNS:x, IP:1.2.3.4, URI:u or email:e (repeatable)"],
  "key-type": ["--key-type T", "ec-p256 (default), ec-p384, ed25519 or rsa-2048"],
  "rekey-type": ["--key-type T", "Type of the new key with --rekey (default: the current key's type)"],
  rekey: ["--rekey", "Reenroll with a new key (default: keep the key)"],
  wait: ["--wait D", "Wait at most D in all for a pending request, HTTP 202 (default 10m; 0: do not wait)"],
  "caramel-server": ["--server HOST[:PORT]", "Caramel server (or an https URL); https://HOST[:PORT]/ is used (env TESSERA_SERVER)"],
  id: ["--id CLIENT_ID", "Client id: the certificate's CN, 1-64 characters, a file name (env TESSERA_CN)"],
  "caramel-dir": ["--dir DIR", "Directory of the key, request and certificate (env TESSERA_CERT_DIR; default .)"],
  "caramel-ca": ["--ca FILE", "CA certificate (env TESSERA_CA; default DIR/certs/HOST[:PORT].cacert, downloaded if absent; required with --embedded)"],
  "caramel-timeout": ["--timeout D", "Stop waiting for the signature after D (default 0: never); --embedded: the deadline of each request (default 30s)"],
  "caramel-key-type": ["--key-type T", "Type of a new key: rsa-2048 (default; Caramel signs RSA only) or ec-p256, ec-p384, rsa-4096…"],
  embedded: ["--embedded", "Embedded mode: one request round, one PEM file, a lock, exit 0/1/69/127 (see above)"],
  pem: ["--pem FILE", "--embedded: the key and certificate file (default DIR/CLIENT_ID.pem)"],
  owner: ["--owner UID[:GID]", "--embedded: owner of FILE, numeric (default: the agent's)"],
  mode: ["--mode MODE", "--embedded: permission bits of FILE, octal (default 0600)"],
} as const;

type Described = keyof typeof OPTION_TEXT;

function optionLines(names: readonly Described[]): string {
  return names
    .map((n) => {
      const [flag, text] = OPTION_TEXT[n];
      return flag.length < 28 ? `  ${flag.padEnd(28)}${text}` : `  ${flag}\n${" ".repeat(30)}${text}`;
    })
    .join("\n");
}

const CLIENT_OPTIONS = ["server", "secret", "secret-file", "dir", "ca", "fingerprint", "prefer-persisted", "hostname", "timeout"] as const;
const EST_CONNECT = ["est-server", "label", "est-ca", "dir", "timeout"] as const;
const EST_AUTH = ["user", "password", "cert", "key"] as const;
const EST_REQUEST = ["subject", "san", "key-type", "wait"] as const;
const COMMON = `  --json                      Machine-readable output
  -h, --help                  Show this help`;
const DURATIONS = "Durations: a number and a unit, ms|s|m|h|d (e.g. 30d, 12h, 90m, 45s).";

/** Help of the `est` commands (RFC 7030), printed by `tessera-agent est <command> --help`. */
export const EST_COMMAND_HELP = {
  "est cacerts": `Usage: tessera-agent est cacerts --server URL (--ca FILE | --ca-fingerprint HEX) [options]

Fetches the EST server's CA certificates (/cacerts), classifies them (trust
anchor, rollover certificates, chain) and writes them as PEM to DIR/ca.crt,
or to --out FILE. Later est commands trust DIR/ca.crt when --ca is not given.

A device without trust anchors bootstraps with --ca-fingerprint (RFC 7030
§4.1.1): the certificates are fetched without checking TLS, and accepted only
if one of them has that SHA-256 fingerprint (colons and case do not matter;
Tessera's server prints "Root CA SHA-256 fingerprint" when it starts) and the
server's TLS certificate chains to it and names the server. Exit 1 otherwise.

Options:
${optionLines([...EST_CONNECT, "ca-fingerprint", "out"])}
${COMMON}

${DURATIONS}
`,
  "est enroll": `Usage: tessera-agent est enroll --server URL [options]

Enrolls over EST (/simpleenroll): makes a key, sends a request for --subject
and --san, and writes DIR/client.key, client.crt and ca.crt (the CA
certificates from /cacerts) as one set, replacing any identity there. The
server may ask for HTTP Basic credentials (--user, --password) and/or a TLS
client certificate (--cert, --key). A pending request (HTTP 202) is waited
for up to --wait; after that exit 5, nothing written: run enroll again later.

Options:
${optionLines([...EST_CONNECT, ...EST_AUTH, ...EST_REQUEST])}
${COMMON}

${DURATIONS}
`,
  "est reenroll": `Usage: tessera-agent est reenroll --server URL [options]

Renews the stored certificate over EST (/simplereenroll): authenticates with
it as TLS client certificate and requests the same subject and
subjectAltNames (RFC 7030 §4.2.2), with the same key unless --rekey. Writes
the new certificate (and key) and the current CA certificates as one set.
Exit 3 when DIR holds no identity.

Options:
${optionLines([...EST_CONNECT, "user", "password", "rekey", "rekey-type", "wait"])}
${COMMON}

${DURATIONS}
`,
  "est serverkeygen": `Usage: tessera-agent est serverkeygen --server URL [options]

Enrolls over EST with a key the server generates (/serverkeygen, RFC 7030
§4.4): checks that the returned key belongs to the certificate and writes the
identity as 'est enroll' does. --key-type is the type of the request's
throwaway key; some servers follow it (Tessera uses its label's
serverkeygen_key_type).

Options:
${optionLines([...EST_CONNECT, ...EST_AUTH, ...EST_REQUEST])}
${COMMON}

${DURATIONS}
`,
} as const;

/** Help of `caramel`, printed by `tessera-agent caramel --help`. */
export const CARAMEL_COMMAND_HELP = {
  caramel: `Usage: tessera-agent caramel --server HOST[:PORT] --id CLIENT_ID [options]
       tessera-agent caramel --embedded --server HOST[:PORT] --id CLIENT_ID --ca FILE [options]

Gets a certificate for CLIENT_ID from a Caramel server (Modio's Caramel or
Tessera's Caramel front-end). The request's subject is the CA certificate's
with the CN replaced by CLIENT_ID; the certificate served is checked (our
key, signed by the CA, CN = CLIENT_ID) before anything is written.

Administered host (default), as caramel-client-rs: makes DIR/CLIENT_ID.key
(0600) and DIR/CLIENT_ID.csr once, downloads the CA certificate to --ca FILE
only when that file does not exist (the server's TLS certificate must then
chain to a public root), posts the request when the server does not know it,
and polls (0.87s doubling up to 23s, ±15%) until it is signed or --timeout
passes. The certificate goes to DIR/CLIENT_ID.crt, replaced atomically, with
the server's Last-Modified as mtime. Exit 0 signed or unchanged; 1 still
pending at --timeout, rejected (delete the .csr and .key the message names to
start over), refused by the server (its reason is shown), TLS or network.

Embedded (--embedded), for devices run from a timer: one request round, never
a wait. Key and certificate are one PEM file (--pem FILE, the key then the
certificate), replaced atomically with --mode and --owner; the request is
FILE with .csr for .pem. The CA file must exist: it is never downloaded.
While it works the run holds FILE.lock, created exclusively (O_EXCL) with its
pid; a lock whose process is gone, or older than 10 minutes, is stale. It
presents the certificate in FILE as TLS client certificate while valid and
sends FILE's mtime as If-Modified-Since: on "not modified" FILE stays
untouched. A rejected request is replaced in the same run by a new key and
request. Exit 0 signed or unchanged, 1 another run holds the lock, 69
pending, 127 anything else (bad options too).

Both modes send User-Agent: tessera-agent-caramel/VERSION (CLIENT_ID).
docs/systemd/ has a service and timer for either mode.

Options:
${optionLines(["caramel-server", "id", "caramel-dir", "caramel-ca", "caramel-timeout", "caramel-key-type", "embedded", "pem", "owner", "mode"])}
${COMMON}

${DURATIONS}
`,
} as const;

/** Help of each command, printed by `tessera-agent <command> --help`. */
export const COMMAND_HELP = {
  fingerprint: `Usage: tessera-agent fingerprint [--persist-dir DIR] [--prefer-persisted]

Prints this device's fingerprint and its tier: hardware (hash of machine id,
product uuid and primary MAC), persisted (from DIR/imprint-identity) or
generated (a random id, saved in DIR). Without --persist-dir only the hardware
tier is possible. enroll, renew and run use --dir as the persist directory,
so 'fingerprint --persist-dir <their DIR>' shows the value they send.

Options:
${optionLines(["persist-dir", "prefer-persisted"])}
${COMMON}
`,
  enroll: `Usage: tessera-agent enroll --server URL (--secret S | --secret-file F) [options]

Enrolls with a fresh EC P-256 key and writes DIR/client.key, client.crt,
ca.crt and enrollment.json as one set. Enrolling again replaces the identity
(the server keeps the same server id for the same fingerprint). A 202 answer
means the server holds the request for operator approval: exit 5, nothing is
written; run enroll again once it is approved.

Options:
${optionLines(CLIENT_OPTIONS)}
${COMMON}

${DURATIONS}
`,
  renew: `Usage: tessera-agent renew --server URL [options]

Keeps the identity current: nothing while more than --threshold is left;
before expiry Tier 1 (mTLS renewal); if that is refused (401/403), or after
expiry within --challenge-window, Tier 2 (challenge signed with the old key);
else Tier 3 (enroll again, which needs the build secret). A network failure or
a 5xx/408/429 answer stops without re-enrolling (exit 1): try again later.
Prints the action (none, renewed, challenge_renewed, reenrolled) and every
tier that failed on the way.

Options:
${optionLines([...CLIENT_OPTIONS, "threshold", "challenge-window", "force"])}
${COMMON}

${DURATIONS}
`,
  status: `Usage: tessera-agent status [--dir DIR] [--threshold D]

Shows whether the device is enrolled, its server id, fingerprint, certificate
serial, expiry, days left and whether renewal is due. Reads files only.
Exit 0 enrolled and valid, 3 not enrolled, 6 expired, 1 unreadable store.

Options:
${optionLines(["dir", "threshold"])}
${COMMON}

${DURATIONS}
`,
  run: `Usage: tessera-agent run --server URL [options]

Stays running: checks at once, then every --interval (±jitter), and renews as
'renew' does (enrolling first when DIR holds no identity, which needs the
secret). After a failure it retries sooner (30s, doubling, at most
--interval). Prints one line per check, renewal and error (JSON lines with
--json). SIGTERM or SIGINT stops it after the check in flight; exit 0.

--exec CMD runs after every renewal: CMD is split on spaces and tabs into a
program and its arguments, with no shell, quoting or expansion (put anything
more in a script). It gets TESSERA_AGENT_ACTION, TESSERA_AGENT_DIR and
TESSERA_AGENT_SERVER_ID in its environment, its output goes to standard
error, it is killed after 2 minutes, and its failure is logged but does not
count as a failed renewal.

Options:
${optionLines([...CLIENT_OPTIONS, "threshold", "challenge-window", "interval", "jitter", "exec"])}
${COMMON}

${DURATIONS}
`,
  ...EST_COMMAND_HELP,
  ...CARAMEL_COMMAND_HELP,
} as const;

/** The `tessera-agent --help` text. */
export const HELP = `Usage: tessera-agent <command> [options]

Device agent: enrolls this device with a Tessera (or imprint) server, over
EST (RFC 7030) or from a Caramel server, keeps its certificate renewed and
reports its state.

Commands:
  fingerprint [--persist-dir DIR] [--prefer-persisted]
                              Print this device's fingerprint and its tier
  enroll --server URL (--secret S | --secret-file F) [--dir DIR] [--ca FILE]
         [--fingerprint FP] [--hostname H]
                              Enroll and write the identity directory
  renew --server URL [--dir DIR] [--secret S | --secret-file F]
        [--threshold 30d] [--challenge-window 30d] [--force]
                              Renew if due: mTLS, then challenge, then re-enroll
  status [--dir DIR] [--threshold 30d]
                              Show the identity, its expiry and whether renewal is due
  run --server URL [--secret S | --secret-file F] [--dir DIR] [--interval 1h]
      [--threshold 30d] [--jitter 0.1] [--exec CMD]
                              Stay running and renew when due (stops on SIGTERM/SIGINT)
  est cacerts --server URL (--ca FILE | --ca-fingerprint HEX) [--out FILE]
                              Fetch the EST CA certificates (bootstrap with a fingerprint)
  est enroll --server URL [--user U] [--password P] [--cert F --key F]
             [--subject DN] [--san NAME]... [--key-type T] [--wait 10m]
                              Enroll over EST and write the identity directory
  est reenroll --server URL [--dir DIR] [--rekey] [--wait 10m]
                              Renew the stored certificate over EST (mTLS)
  est serverkeygen --server URL [--user U] [--password P] [--subject DN]
                              Enroll over EST with a key the server generates
  caramel --server HOST[:PORT] --id CLIENT_ID [--dir DIR] [--ca FILE] [--timeout D]
          [--embedded [--pem FILE] [--owner UID[:GID]] [--mode 0600]]
                              Get a certificate from a Caramel server
  help [COMMAND]              Show this help, or a command's

Run 'tessera-agent <command> --help' for every option of a command.

Environment:
  TESSERA_SERVER              Default of --server
  TESSERA_BUILD_SECRET        Build secret when neither --secret nor --secret-file is given
  TESSERA_AGENT_DIR           Default of --dir (else ./tessera-identity)
  TESSERA_EST_PASSWORD        EST HTTP Basic password when --password is not given
  TESSERA_CN                  caramel: default of --id
  TESSERA_CA                  caramel: default of --ca
  TESSERA_CERT_DIR            caramel: default of --dir (else .)

Global options:
  --json                      Machine-readable output (run: one JSON object per line)
  -h, --help                  Show help

Exit codes:
  0  ok
  1  failure: network, TLS, server error (5xx), bad answer, disk; worth retrying
  2  usage error
  3  not enrolled (or a build secret is needed to enroll and none was given)
  4  refused by the server (4xx: wrong secret or password, enrollment rejected, bad request)
  5  pending: the enrollment waits for operator approval (HTTP 202)
  6  status: the certificate has expired
  69  caramel --embedded: pending (HTTP 202); there 1 means another run holds the lock
  127  caramel --embedded: any other failure, usage errors included
`;
