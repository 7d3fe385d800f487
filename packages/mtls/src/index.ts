/**
 * @tessera/mtls — framework-free mTLS peer verification (chain, validity,
 * purpose, revocation by CRL and live feed) and a guard for node:http,
 * Express and Fastify.
 */
export * from "./verify.js";
export * from "./errors.js";
export * from "./trust.js";
export * from "./revocation.js";
export * from "./crl-source.js";
export * from "./sse.js";
export * from "./feed.js";
export * from "./identity.js";
export * from "./verifier.js";
export * from "./guard.js";
