/** The certs-only CMS that EST answers carry: the same bytes as @tessera/pki's buildCertsOnly. */
import "reflect-metadata";
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildCertsOnly, generateKeyPair, readCmsCertificates } from "@tessera/pki";
import { issueTestLeaf, makeTestCa } from "../../../../pki/src/test-helpers.js";
import { certsOnlyDer } from "./wire.js";

test("certsOnlyDer: byte for byte buildCertsOnly, certificates in order; refuses what is not one DER SEQUENCE", async () => {
  const ca = await makeTestCa();
  const leaf = await issueTestLeaf(ca, "device-1", generateKeyPair().privateKey);
  const certs = [ca.root.der, ca.intermediate.der, leaf.der];
  for (const list of [[leaf.der], certs, []]) {
    assert.deepEqual(certsOnlyDer(list), buildCertsOnly(list));
    assert.deepEqual(readCmsCertificates(certsOnlyDer(list)), list);
  }
  assert.throws(() => certsOnlyDer([Buffer.from("0400", "hex")]));
  assert.throws(() => certsOnlyDer([Buffer.concat([ca.root.der, Buffer.of(0)])]));
});
