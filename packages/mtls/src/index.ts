/**
 * @tessera/mtls — framework-free mTLS peer verification (chain, validity,
 * purpose, revocation) for any Node service.
 */
export * from "./verify.js";
