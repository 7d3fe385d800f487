import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  attributeOid,
  attributeShortName,
  decodeName,
  encodeName,
  formatName,
  isEmptyName,
  nameAttribute,
  parseNameString,
  type NameAttribute,
} from "./name.js";
import { encodeOid, readChildren, readWhole, Tag, tlv, tlvBytes } from "./der.js";
import { parseCertificate } from "./certificate.js";
import { PkiError, type PkiErrorCode } from "./errors.js";

function pkiCode(code: PkiErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code, `detail: ${err.detail}`);
    return true;
  };
}
const invalid = pkiCode("TESSERA_ERR_PKI_INVALID_ARGUMENT");

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pki-name-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" }).toString();
fs.writeFileSync(path.join(dir, "key.pem"), crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ format: "pem", type: "pkcs8" }));
// string_mask = pkix: PrintableString where it fits (the distro default "utf8only" would force UTF8String).
fs.writeFileSync(path.join(dir, "pkix.cnf"), "[req]\ndistinguished_name = dn\nstring_mask = pkix\n[dn]\n");
fs.writeFileSync(path.join(dir, "default.cnf"), "[req]\ndistinguished_name = dn\nstring_mask = default\n[dn]\n");

/** The subject Name DER of a CSR file written by openssl. */
function csrSubject(file: string): Buffer {
  const der = fs.readFileSync(path.join(dir, file));
  const [info] = readChildren(der, readWhole(der, Tag.SEQUENCE));
  const [, subject] = readChildren(der, info!);
  return Buffer.from(tlvBytes(der, subject!));
}

/** Tags of the attribute values of a DER name, in order. */
function valueTags(der: Buffer): number[] {
  const out: number[] = [];
  for (const rdn of readChildren(der, readWhole(der, Tag.SEQUENCE))) {
    for (const atv of readChildren(der, rdn)) out.push(readChildren(der, atv)[1]!.tag);
  }
  return out;
}

test("encodeName/decodeName round-trip, one attribute per RDN, in order", () => {
  const attrs: NameAttribute[] = [
    { type: "C", value: "DE" },
    { type: "ST", value: "Bayern" },
    { type: "L", value: "München" },
    { type: "STREET", value: "Hauptstraße 1" },
    { type: "O", value: "Acme GmbH" },
    { type: "OU", value: "Devices" },
    { type: "CN", value: "device-001" },
    { type: "SERIALNUMBER", value: "SN42" },
    { type: "POSTALCODE", value: "80331" },
    { type: "DC", value: "example" },
    { type: "UID", value: "u1" },
    { type: "E", value: "ops@example.com" },
    { type: "TITLE", value: "Sensor" },
    { type: "GN", value: "Ada" },
    { type: "SN", value: "Lovelace" },
    { type: "1.3.6.1.4.1.99999.1", value: "custom" },
  ];
  const der = encodeName(attrs);
  const rdns = readChildren(der, readWhole(der, Tag.SEQUENCE));
  assert.equal(rdns.length, attrs.length);
  for (const rdn of rdns) {
    assert.equal(rdn.tag, Tag.SET);
    assert.equal(readChildren(der, rdn).length, 1);
  }
  assert.deepEqual(decodeName(der), attrs);
});

test("encodeName picks PrintableString, UTF8String or IA5String per value and type", () => {
  const der = encodeName([
    { type: "C", value: "US" },
    { type: "O", value: "Acme (Europe) Ltd., a=b? +'/:-" },
    { type: "OU", value: "R&D" },
    { type: "OU", value: "under_score" },
    { type: "OU", value: "at@sign" },
    { type: "CN", value: "Zürich 设备 🔒" },
    { type: "E", value: "a@b.example" },
    { type: "DC", value: "com" },
    { type: "CN", value: "" },
  ]);
  assert.deepEqual(valueTags(der), [
    Tag.PRINTABLE_STRING,
    Tag.PRINTABLE_STRING,
    Tag.UTF8_STRING,
    Tag.UTF8_STRING,
    Tag.UTF8_STRING,
    Tag.UTF8_STRING,
    Tag.IA5_STRING,
    Tag.IA5_STRING,
    Tag.PRINTABLE_STRING,
  ]);
  assert.equal(decodeName(der)[5]!.value, "Zürich 设备 🔒");
  assert.equal(encodeName([]).toString("hex"), "3000");
});

test("encodeName equals the subject `openssl req -subj` writes (PrintableString, IA5String)", () => {
  const subj = "/C=US/ST=CA/L=Springfield/O=Acme Inc./OU=Devices/CN=device-1/serialNumber=ABC-123/emailAddress=a@b.example/DC=example";
  openssl("req", "-config", "pkix.cnf", "-new", "-key", "key.pem", "-subj", subj, "-outform", "DER", "-out", "p.csr");
  const theirs = csrSubject("p.csr");
  // parseNameString knows the e-mail attribute as "E" (OpenSSL calls it emailAddress)
  const ours = encodeName(parseNameString(subj.replace("/emailAddress=", "/E=")));
  assert.equal(ours.toString("hex"), theirs.toString("hex"));
  assert.deepEqual(valueTags(ours), [...Array(7).fill(Tag.PRINTABLE_STRING), Tag.IA5_STRING, Tag.IA5_STRING]);
});

test("decodeName reads OpenSSL's UTF8String and BMPString values", () => {
  openssl("req", "-utf8", "-new", "-key", "key.pem", "-subj", "/O=Zürich AG/CN=设备-1", "-outform", "DER", "-out", "u.csr");
  const utf8 = csrSubject("u.csr");
  assert.deepEqual(valueTags(utf8), [Tag.UTF8_STRING, Tag.UTF8_STRING]);
  assert.deepEqual(decodeName(utf8), [{ type: "O", value: "Zürich AG" }, { type: "CN", value: "设备-1" }]);
  assert.ok(encodeName(decodeName(utf8)).equals(utf8), "our encoding of the same UTF-8 name is identical");

  openssl("req", "-config", "default.cnf", "-utf8", "-new", "-key", "key.pem", "-subj", "/CN=设备", "-outform", "DER", "-out", "b.csr");
  const bmp = csrSubject("b.csr");
  assert.deepEqual(valueTags(bmp), [0x1e]);
  assert.deepEqual(decodeName(bmp), [{ type: "CN", value: "设备" }]);
});

test("decodeName flattens multi-valued RDNs and keeps unknown OIDs dotted", () => {
  const atv = (oid: string, v: string) => tlv(Tag.SEQUENCE, encodeOid(oid), tlv(Tag.UTF8_STRING, Buffer.from(v)));
  const der = tlv(Tag.SEQUENCE, tlv(Tag.SET, atv("2.5.4.10", "Acme")), tlv(Tag.SET, atv("2.5.4.3", "a"), atv("0.9.2342.19200300.100.1.1", "b")), tlv(Tag.SET, atv("1.2.3.4", "x")));
  assert.deepEqual(decodeName(der), [
    { type: "O", value: "Acme" },
    { type: "CN", value: "a" },
    { type: "UID", value: "b" },
    { type: "1.2.3.4", value: "x" },
  ]);
});

test("decodeName rejects malformed names", () => {
  const malformed = pkiCode("TESSERA_ERR_PKI_MALFORMED_DER");
  const atv = tlv(Tag.SEQUENCE, encodeOid("2.5.4.3"), tlv(Tag.UTF8_STRING, Buffer.from("x")));
  assert.throws(() => decodeName(tlv(Tag.SEQUENCE, tlv(Tag.SEQUENCE, atv))), malformed, "RDN not a SET");
  assert.throws(() => decodeName(tlv(Tag.SEQUENCE, tlv(Tag.SET, tlv(Tag.SEQUENCE, encodeOid("2.5.4.3"))))), malformed, "no value");
  assert.throws(() => decodeName(tlv(Tag.SEQUENCE, tlv(Tag.SET, tlv(Tag.SEQUENCE, tlv(Tag.UTF8_STRING, Buffer.from("x")), tlv(Tag.UTF8_STRING))))), malformed, "type not an OID");
  assert.throws(() => decodeName(Buffer.concat([encodeName([{ type: "CN", value: "x" }]), Buffer.of(0)])), malformed, "trailing bytes");
  assert.throws(() => decodeName(tlv(Tag.SET)), malformed, "not a SEQUENCE");
});

test("attributeOid / attributeShortName", () => {
  assert.equal(attributeOid("CN"), "2.5.4.3");
  assert.equal(attributeOid("cn"), "2.5.4.3");
  assert.equal(attributeOid("serialNumber"), "2.5.4.5");
  assert.equal(attributeOid("E"), "1.2.840.113549.1.9.1");
  assert.equal(attributeOid("DC"), "0.9.2342.19200300.100.1.25");
  assert.equal(attributeOid("1.2.3.4"), "1.2.3.4");
  assert.throws(() => attributeOid("emailAddress"), invalid);
  assert.throws(() => attributeOid("FOO"), invalid);
  assert.throws(() => attributeOid("1"), invalid);
  assert.equal(attributeShortName("2.5.4.10"), "O");
  assert.equal(attributeShortName("1.2.3.4"), "1.2.3.4");
  assert.throws(() => encodeName([{ type: "NOPE", value: "x" }]), invalid);
});

test("nameAttribute returns the first attribute of a type", () => {
  const der = encodeName([{ type: "O", value: "Acme" }, { type: "CN", value: "first" }, { type: "CN", value: "second" }]);
  assert.equal(nameAttribute(der, "CN"), "first");
  assert.equal(nameAttribute(der, "cn"), "first");
  assert.equal(nameAttribute(der, "2.5.4.10"), "Acme");
  assert.equal(nameAttribute(der, "OU"), undefined);
  assert.throws(() => nameAttribute(der, "BOGUS"), invalid);
});

test("isEmptyName", () => {
  assert.equal(isEmptyName(encodeName([])), true);
  assert.equal(isEmptyName(encodeName([{ type: "CN", value: "x" }])), false);
});

test("formatName: RFC 4514, most significant RDN last, with escaping", () => {
  assert.equal(formatName(encodeName([{ type: "C", value: "US" }, { type: "O", value: "Acme" }, { type: "CN", value: "dev" }])), "CN=dev,O=Acme,C=US");
  assert.equal(formatName(encodeName([])), "");
  const cases: [string, string][] = [
    ["Acme, Inc.", "Acme\\, Inc."],
    ["a+b", "a\\+b"],
    ['say "hi"', 'say \\"hi\\"'],
    ["back\\slash", "back\\\\slash"],
    ["<tag>;", "\\<tag\\>\\;"],
    ["#hash", "\\#hash"],
    [" lead", "\\ lead"],
    ["trail ", "trail\\ "],
    ["mid#dle = ok", "mid#dle = ok"],
    ["Zürich 设备", "Zürich 设备"],
  ];
  for (const [value, escaped] of cases) assert.equal(formatName(encodeName([{ type: "CN", value }])), `CN=${escaped}`, value);
  assert.equal(formatName(encodeName([{ type: "1.2.3.4", value: "x" }])), "1.2.3.4=x");
});

test("formatName equals `openssl x509 -subject -nameopt RFC2253`", () => {
  openssl("req", "-config", "pkix.cnf", "-x509", "-new", "-key", "key.pem", "-days", "1", "-subj", '/C=US/O=Acme, Inc./OU=a\\+b;c/CN=#dev "q" <x> ', "-out", "e.pem");
  const cert = parseCertificate(fs.readFileSync(path.join(dir, "e.pem"), "utf8"));
  const theirs = openssl("x509", "-in", "e.pem", "-noout", "-subject", "-nameopt", "RFC2253").trim().replace(/^subject=/, "");
  assert.equal(formatName(cert.subject), theirs);
  assert.equal(formatName(cert.subject), 'CN=\\#dev \\"q\\" \\<x\\>\\ ,OU=a\\+b\\;c,O=Acme\\, Inc.,C=US');
});

test("parseNameString: RFC 4514-style and OpenSSL /-style, in written order", () => {
  assert.deepEqual(parseNameString("CN=device-1, O=Acme"), [{ type: "CN", value: "device-1" }, { type: "O", value: "Acme" }]);
  assert.deepEqual(parseNameString("/O=Acme/CN=device-1"), [{ type: "O", value: "Acme" }, { type: "CN", value: "device-1" }]);
  assert.deepEqual(parseNameString("  /C=US/O=Acme Inc/CN=x/  "), [{ type: "C", value: "US" }, { type: "O", value: "Acme Inc" }, { type: "CN", value: "x" }]);
  assert.deepEqual(parseNameString("cn = spaced , o= Acme "), [{ type: "CN", value: "spaced" }, { type: "O", value: "Acme" }]);
  assert.deepEqual(parseNameString("serialNumber=42,2.5.4.3=oid-typed"), [{ type: "SERIALNUMBER", value: "42" }, { type: "2.5.4.3", value: "oid-typed" }]);
  assert.deepEqual(parseNameString("CN=a=b"), [{ type: "CN", value: "a=b" }]);
  assert.deepEqual(parseNameString("CN=Zürich 设备"), [{ type: "CN", value: "Zürich 设备" }]);
  assert.deepEqual(parseNameString(""), []);
  assert.deepEqual(parseNameString("/"), []);
});

test("parseNameString: escapes", () => {
  assert.deepEqual(parseNameString("O=Acme\\, Inc.,CN=x"), [{ type: "O", value: "Acme, Inc." }, { type: "CN", value: "x" }]);
  assert.deepEqual(parseNameString("/O=a\\/b/CN=c,d"), [{ type: "O", value: "a/b" }, { type: "CN", value: "c,d" }]);
  assert.deepEqual(parseNameString('CN=\\#x \\"q\\" \\<y\\>\\;\\+'), [{ type: "CN", value: '#x "q" <y>;+' }]);
  assert.deepEqual(parseNameString("CN=trail\\ "), [{ type: "CN", value: "trail " }]);
  assert.deepEqual(parseNameString("CN=back\\\\,O=x"), [{ type: "CN", value: "back\\" }, { type: "O", value: "x" }]);
  assert.deepEqual(parseNameString("/CN=back\\\\/O=x"), [{ type: "CN", value: "back\\" }, { type: "O", value: "x" }]);
});

test("parseNameString(formatName(x)) reversed gives back the same DER (escaping round-trip)", () => {
  const values = ["Acme, Inc.", "a+b", 'q"q', "back\\", "\\lead", "<>;", "#x", " lead", "trail ", "a  b", "Zürich 设备", "plain"];
  for (const v of values) {
    const der = encodeName([{ type: "O", value: "Org" }, { type: "CN", value: v }]);
    const parsed = parseNameString(formatName(der));
    assert.deepEqual(parsed, [{ type: "CN", value: v }, { type: "O", value: "Org" }], JSON.stringify(v));
    assert.ok(encodeName(parsed.reverse()).equals(der), JSON.stringify(v));
  }
});

test("parseNameString rejects bad input", () => {
  for (const bad of ["novalue", "=x", "CN=x,junk", "/CN=x/=y", "FOO=bar", "/X-Y=z"]) {
    assert.throws(() => parseNameString(bad), invalid, bad);
  }
});
