/**
 * @tessera/client — the device SDK: fingerprint, identity store, protocol
 * clients (imprint, EST, Caramel), renewal scheduling and reloadable TLS.
 * Never imports @tessera/server.
 */

// Device fingerprint (imprint spec §7).
export {
  FingerprintError, generateFingerprint, hashAttributes, hashGeneratedId, IDENTITY_FILE, readPersistedIdentity, writePersistedIdentity,
  type FingerprintOptions, type FingerprintResult, type FingerprintTier,
} from "./fingerprint/fingerprint.js";
export { collectAttributes, normaliseValue, parseIoregUuid, selectPrimaryMac, type CollectorOptions, type NicInfo } from "./fingerprint/collectors.js";

// Identity store directory (imprint spec §8).
export {
  certificateExpiry, encodeEnrollmentJson, encodeStoredKey, isEnrolled, loadCertificate, loadIdentity, needsRenewal, parseStoredKey, saveIdentity,
  STORE_FILES, StoreDirError, type IdentityToSave, type SaveOptions, type StoredIdentity,
} from "./keystore/store-dir.js";

// Imprint protocol client (imprint spec §3–§5, §8).
export { ImprintClient, type ImprintClientOptions, type ImprintOperations, type ImprintResult } from "./protocols/imprint/client.js";
export { ImprintError, type ImprintAttempt, type ImprintErrorInit, type ImprintErrorKind } from "./protocols/imprint/errors.js";
export { challengeDigest, challengeMessage, signProof, verifyProof } from "./protocols/imprint/proof.js";
export { checkEnrollmentResponse, type ImprintIssued } from "./protocols/imprint/response.js";
export {
  classifyFailure, DEFAULT_RENEWAL_THRESHOLD_MS, renewOrReenroll, type FailureClass, type RenewAction, type RenewOrReenrollOptions, type RenewOutcome,
} from "./protocols/imprint/renew-or-reenroll.js";
export { goArch, goOs, MAX_RESPONSE_BYTES } from "./protocols/imprint/wire.js";

// EST client (RFC 7030)
export {
  DEFAULT_EST_MAX_WAIT_MS, DEFAULT_EST_TIMEOUT_MS, EstClient, type EstClientOptions, type EstServerKeygenResult,
} from "./protocols/est/client.js";
export { bootstrapCacerts, normaliseFingerprint, type EstBootstrapOptions, type EstBootstrapResult } from "./protocols/est/bootstrap.js";
export {
  classifyCaCerts, parseCaCertsResponse, type EstCaCertificate, type EstCaCerts, type EstCaRole, type EstCertificate,
} from "./protocols/est/cacerts.js";
export { EstError, type EstErrorInit, type EstErrorKind } from "./protocols/est/errors.js";
export { checkEstServerIdentity, OID_CMC_RA, type EstOperation } from "./protocols/est/wire.js";

// Caramel client (spec caramel.md): administered ensure loop and library mode.
export {
  CARAMEL_BACKOFF_BASE_MS, CARAMEL_BACKOFF_MAX_MS, CARAMEL_CLIENT_VERSION, caramelBackoffMs, CaramelClient, DEFAULT_CARAMEL_TIMEOUT_MS,
  type CaramelClientOptions, type CaramelCurrentCertificate, type CaramelEnsureOptions, type CaramelEnsureResult, type CaramelPollOptions,
  type CaramelPollResult, type CaramelRootOptions,
} from "./protocols/caramel/client.js";
export {
  caramelEnroll, DEFAULT_CARAMEL_ENROLL_WAIT_MS, DEFAULT_CARAMEL_KEY_TYPE, type CaramelEnrollOptions, type CaramelEnrollResult,
} from "./protocols/caramel/enroll.js";
export { CaramelError, type CaramelErrorInit, type CaramelErrorKind } from "./protocols/caramel/errors.js";
export {
  buildCaramelCsr, caramelHash, caramelSubject, csrMatchesKey, MAX_CLIENT_ID_LENGTH, readCaramelCa, readCaramelCsr, verifyCaramelCertificate,
  type CaramelCa, type CaramelCsr,
} from "./protocols/caramel/request.js";
export { caramelBaseUrl, userAgentWithId } from "./protocols/caramel/wire.js";

// Single files and locks (the Caramel agent's; usable by any device program).
export { createNewFile, readOptional, writeFileAtomic, type FileAttributes } from "./keystore/atomic-file.js";
export { acquireFileLock, DEFAULT_LOCK_MAX_AGE_MS, type FileLockOptions, type HeldLock, type LockOwner } from "./keystore/file-lock.js";

// Renewal in the background.
export {
  AutoRenewer, type AutoRenewerOptions, type RenewCheckContext, type RenewCheckResult, type RenewerBackoff, type RenewerTimers,
} from "./renew/auto-renewer.js";

// TLS that picks up renewed files without a restart (client agents and server contexts).
export { ReloadableTls, type ReloadableTlsOptions, type ReloadEvent, type TlsIdentity, type UndiciDispatcherOptions } from "./tls/reloadable-tls.js";
