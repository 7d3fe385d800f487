/**
 * @tessera/pki — pure X.509 toolkit (no I/O): keys, PEM/DER, CSR parse and
 * verify, certificate templates, CRL, OCSP, certs-only CMS, names, serials.
 */
export * from "./errors.js";
export * from "./der.js";
export * from "./pem.js";
export * from "./keys.js";
export * from "./name.js";
export * from "./serial.js";
export * from "./csr.js";
export * from "./certificate.js";
export * from "./template.js";
export * from "./crl.js";
export * from "./cms.js";
export * from "./ca.js";
export * from "./webcrypto.js";
export * from "./crl-parse.js";
export * from "./base64.js";
export * from "./csrattrs.js";
export * from "./ocsp.js";
export * from "./ocsp-client.js";
