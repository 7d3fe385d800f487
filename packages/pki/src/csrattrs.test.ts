import { test } from "node:test";
import assert from "node:assert/strict";
import { CsrAttrOid, decodeCsrAttrs, encodeCsrAttrs, oidValue } from "./csrattrs.js";

// RFC 7030 appendix A.2: challengePassword; ecPublicKey with secp384r1; extensionRequest with macAddress; ecdsa-with-SHA384.
const RFC_EXAMPLE = "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==";

test("decodes RFC 7030's example CSR attributes", () => {
  const attrs = decodeCsrAttrs(Buffer.from(RFC_EXAMPLE, "base64"));
  assert.deepEqual(attrs, [
    { oid: CsrAttrOid.challengePassword },
    { type: CsrAttrOid.ecPublicKey, values: [oidValue("1.3.132.0.34")] },
    { type: CsrAttrOid.extensionRequest, values: [oidValue("1.3.6.1.1.1.1.22")] },
    { oid: "1.2.840.10045.4.3.3" },
  ]);
});

test("encodes RFC 7030's example byte for byte", () => {
  const der = encodeCsrAttrs([
    { oid: CsrAttrOid.challengePassword },
    { type: CsrAttrOid.ecPublicKey, values: [oidValue("1.3.132.0.34")] },
    { type: CsrAttrOid.extensionRequest, values: [oidValue("1.3.6.1.1.1.1.22")] },
    { oid: "1.2.840.10045.4.3.3" },
  ]);
  assert.equal(der.toString("base64"), RFC_EXAMPLE);
});

test("an empty list is an empty SEQUENCE; garbage and empty attributes are refused", () => {
  assert.deepEqual(encodeCsrAttrs([]), Buffer.from([0x30, 0x00]));
  assert.deepEqual(decodeCsrAttrs(Buffer.from([0x30, 0x00])), []);
  assert.throws(() => decodeCsrAttrs(Buffer.from([0x31, 0x00])), { code: "TESSERA_ERR_PKI_MALFORMED_DER" });
  assert.throws(() => decodeCsrAttrs(Buffer.from([0x30, 0x02, 0x02, 0x00])), { code: "TESSERA_ERR_PKI_MALFORMED_DER" });
  assert.throws(() => encodeCsrAttrs([{ type: "1.2.3", values: [] }]), { code: "TESSERA_ERR_PKI_INVALID_ARGUMENT" });
});
