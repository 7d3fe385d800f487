/** The `tessera --help` text; docs/cli.md repeats it and a test keeps both in step with the dispatcher. */
export const HELP = `Usage: tessera <command> [options]

Commands:
  serve [--workers N]           Run the server (creates the CA on first start); --workers: N processes over one store
                                (node:cluster; default 1, env TESSERA_WORKERS, [server] workers)
  ca init [--key-type T]        Create a root (10 y) + issuing CA (5 y); T: ec-p256 (default), ec-p384, ed25519, rsa-2048|3072|4096
  ca init --import-cert F --import-key F [--root F] [--import-key-passphrase-file F]
                                Import an existing CA (issuing certificate + key) instead
  ca show                       Print subject, validity and fingerprints of the CA certificates (and rollover ones)
  ca rollover [--key-type T]    Create a new root (10 y) + cross certificates (RFC 4210 §4.4) for EST /cacerts;
                                T defaults to the current root's key type; needs root.key.pem
  config check                  Validate configuration; print every problem at once
  db migrate                    Apply pending store migrations
  import liteboot DIR           Move a liteboot install (certs/, CADB.db) into a fresh data dir: CA, TLS cert, devices
  cert sign --csr FILE [--profile NAME] [--subject DN] [--san NAME]...
                                Sign a CSR offline through the authority; prints the PEM certificate
  cert list [--device ID] [--status valid|revoked|superseded] [--limit N]
  cert show SERIAL              SERIAL in hex (with or without colons) or decimal
  cert revoke SERIAL [--reason R]
                                R: unspecified (default), keyCompromise, superseded, cessationOfOperation, …
  secret create NAME [--value S] [--scope S] [--expires 90d] [--max-uses N]
                                Create a bootstrap secret (printed once when generated)
  secret list                   List bootstrap secrets (never their values)
  secret revoke NAME            Revoke a bootstrap secret
  device list [--status active|pending|revoked|disabled] [--limit N]
  device show ID                A device, its attributes and its certificates
  device revoke ID [--reason R] Revoke a device and its unexpired certificates (R default cessationOfOperation)
  device new [--bootstrap DIR] [--server URL] [--out DIR] [--ou LABEL] [--organization O]
                                liteboot's new-device.sh: new UUID, key and CSR (/O=Test Vendor/CN=UUID/OU=Signing),
                                enrolled over the liteboot API (default: [liteboot] listen, https://localhost:1443) with DIR's
                                BOOTSTRAP.crt, BOOTSTRAP.key and CA.crt (default ./certs); writes OUT/certs/UUID.key, UUID.crt
  enroll list [--status pending|approved|rejected] [--limit N]
                                Enrollment requests held for approval (default: pending)
  enroll approve REQUEST-ID     Approve; the device gets its certificate on its next enrollment
  enroll reject REQUEST-ID [--reason TEXT]
  est user add NAME [--password P] [--label L]
                                Create an EST (HTTP Basic) user for label L, or every label (password printed once when generated)
  est user list                 List EST users (never their passwords)
  est user remove NAME          Delete an EST user
  bootstrap issue --name LINE --out DIR [--expires 90d] [--max-uses N] [--scope S]
                                Issue a liteboot factory bootstrap certificate + key into DIR
  bootstrap list                List bootstrap certificates, their uses and state
  bootstrap revoke NAME         Revoke a bootstrap certificate (and put it on the CRL)
  caramel list                  Caramel CSRs not rejected: ID, CN, SHA-256, newest notAfter (signed first)
  caramel sign ID|SHA256 [--long]
                                Sign a Caramel CSR (short lifetime, or the long one)
  caramel reject ID|SHA256      Reject a Caramel CSR (its client gets 403 and starts over)
  token create NAME --role R [--value T]
                                Create an operator bearer token for the web console, the admin API and the Mainflux API;
                                R: admin, editor or viewer (printed once when generated)
  token list                    List operator tokens and their roles (never their values)
  token revoke NAME             Revoke an operator token (its console sessions end)
  thing add ID [--key K] [--external-key K]
                                Register a Mainflux thing; K (its certificates' CN) defaults to a new UUID, printed once
  thing list                    List Mainflux things (never their keys)
  thing remove ID               Remove a thing and revoke its certificates

Global options:
  --config FILE                 TOML configuration file (default ./tessera.toml if present)
  --data-dir DIR                Data directory (default ./data; env TESSERA_DATA_DIR)
  --listen HOST:PORT            Main HTTPS listener (default 127.0.0.1:8443; env TESSERA_LISTEN)
  --http-listen HOST:PORT       Plain HTTP for CA/CRL download (default off; env TESSERA_HTTP_LISTEN)
  --hostname NAME               Public host name (env TESSERA_HOSTNAME)
  --database-url URL            sqlite:PATH or postgres://… (env TESSERA_DATABASE_URL)
  --ca-passphrase-file FILE     CA key passphrase file (env TESSERA_CA_PASSPHRASE_FILE)
  --log-level LEVEL             fatal|error|warn|info|debug|trace|silent
  --json                        Machine-readable output
  -h, --help                    Show this help

Exit codes: 0 ok, 1 failure, 2 usage error, 3 invalid configuration, 4 not found, 5 refused (bad input or conflict).
`;
