/*
 * Bouncy Castle's EST client (org.bouncycastle.est, BC 1.72 as Debian ships it)
 * against a Tessera EST server. Only BC's own client talks to the server:
 * JsseESTServiceBuilder with explicit trust anchors and BC's default host name
 * check (JsseDefaultHostnameAuthorizer), JcaHttpAuthBuilder for HTTP Basic
 * (BC sends the first request bare and answers the 401 challenge itself).
 *
 * Steps: /cacerts, /csrattrs, /simpleenroll (Basic), /simplereenroll over mTLS
 * with the same key, /simplereenroll with a new key, /serverkeygen. One line per
 * step ("ok <step> ..."), exit status 1 with "FAIL <step>: ..." on the first
 * failure, 2 on bad usage. The certificates land in the work dir as PEM.
 *
 * Compile: javac -cp /usr/share/java/bcprov.jar:/usr/share/java/bcpkix.jar:/usr/share/java/bcutil.jar:/usr/share/java/bctls.jar -d OUT EstInterop.java
 * Run:     java -cp OUT:<same jars> EstInterop HOST:PORT [LABEL] TRUST_ANCHORS.pem USER PASSWORD WORK_DIR
 */

import java.io.File;
import java.io.FileWriter;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Collection;
import java.util.Date;
import java.util.HashSet;
import java.util.Set;

import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.X509TrustManager;

import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.est.CACertsResponse;
import org.bouncycastle.est.CSRRequestResponse;
import org.bouncycastle.est.ESTException;
import org.bouncycastle.est.ESTService;
import org.bouncycastle.est.EnrollmentResponse;
import org.bouncycastle.est.jcajce.JcaHttpAuthBuilder;
import org.bouncycastle.est.jcajce.JcaJceUtils;
import org.bouncycastle.est.jcajce.JsseESTServiceBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.ContentVerifierProvider;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.bouncycastle.util.encoders.Hex;
import org.bouncycastle.util.io.pem.PemObject;
import org.bouncycastle.util.io.pem.PemWriter;

public class EstInterop
{
    /** A failed check: the step and what went wrong. */
    static final class Failure extends Exception
    {
        private static final long serialVersionUID = 1L;

        Failure(String message)
        {
            super(message);
        }
    }

    private final String server;
    private final String label;
    private final Set<TrustAnchor> anchors;
    private final String user;
    private final char[] password;
    private final File workDir;
    private final SecureRandom random = new SecureRandom();
    private final JcaX509CertificateConverter toJca = new JcaX509CertificateConverter().setProvider("BC");

    private String step = "setup";
    private X509CertificateHolder[] caCerts;

    EstInterop(String server, String label, Set<TrustAnchor> anchors, String user, char[] password, File workDir)
    {
        this.server = server;
        this.label = label;
        this.anchors = anchors;
        this.user = user;
        this.password = password;
        this.workDir = workDir;
    }

    public static void main(String[] args)
    {
        if (args.length != 5 && args.length != 6)
        {
            System.err.println("usage: EstInterop HOST:PORT [LABEL] TRUST_ANCHORS.pem USER PASSWORD WORK_DIR");
            System.exit(2);
        }
        int i = 0;
        String server = args[i++];
        String label = args.length == 6 ? args[i++] : null;
        String anchorFile = args[i++];
        String user = args[i++];
        char[] password = args[i++].toCharArray();
        File workDir = new File(args[i]);

        Security.addProvider(new BouncyCastleProvider());
        EstInterop run = null;
        try
        {
            workDir.mkdirs();
            run = new EstInterop(server, label, readAnchors(anchorFile), user, password, workDir);
            run.all();
        }
        catch (Throwable t)
        {
            System.out.println("FAIL " + (run == null ? "setup" : run.step) + ": " + describe(t));
            if (!(t instanceof Failure))
            {
                t.printStackTrace(System.err);
            }
            System.exit(1);
        }
        System.exit(0);
    }

    /** The exception and its causes on one line; for an ESTException also its HTTP status and body. */
    static String describe(Throwable t)
    {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause())
        {
            if (sb.length() > 0)
            {
                sb.append(" <- ");
            }
            sb.append(c instanceof Failure ? "" : c.getClass().getName() + ": ").append(c.getMessage());
            if (c instanceof ESTException)
            {
                try
                {
                    InputStream body = ((ESTException)c).getBody();
                    byte[] b = body.readAllBytes();
                    if (b.length > 0)
                    {
                        sb.append(" [body: ").append(new String(b, StandardCharsets.UTF_8).trim()).append("]");
                    }
                }
                catch (IOException e)
                {
                    // best effort
                }
            }
        }
        return sb.toString();
    }

    /** Every certificate of a PEM file, as explicit trust anchors. */
    static Set<TrustAnchor> readAnchors(String file)
        throws Exception
    {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        Collection<? extends Certificate> certs;
        try (InputStream in = new java.io.FileInputStream(file))
        {
            certs = cf.generateCertificates(in);
        }
        if (certs.isEmpty())
        {
            throw new Failure("no certificate in " + file);
        }
        Set<TrustAnchor> out = new HashSet<TrustAnchor>();
        for (Certificate c : certs)
        {
            out.add(new TrustAnchor((X509Certificate)c, null));
        }
        return out;
    }

    /** An EST service with the trust anchors, BC's default host name check, and an optional TLS client key. */
    private ESTService service(KeyManager[] keyManagers)
    {
        X509TrustManager[] trust = JcaJceUtils.getCertPathTrustManager(anchors, null);
        JsseESTServiceBuilder b = new JsseESTServiceBuilder(server, trust).withTimeout(30000);
        if (label != null)
        {
            b.withLabel(label);
        }
        if (keyManagers != null)
        {
            b.withKeyManagers(keyManagers);
        }
        return b.build();
    }

    /** Key managers presenting `cert` (leaf only) with `key`. */
    private KeyManager[] clientKey(X509CertificateHolder cert, PrivateKey key)
        throws Exception
    {
        char[] pass = "interop".toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setKeyEntry("device", key, pass, new Certificate[]{toJca.getCertificate(cert)});
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, pass);
        return kmf.getKeyManagers();
    }

    private KeyPair newKey()
        throws Exception
    {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"), random);
        return g.generateKeyPair();
    }

    private static PKCS10CertificationRequest csr(X500Name subject, KeyPair kp)
        throws Exception
    {
        return new JcaPKCS10CertificationRequestBuilder(subject, kp.getPublic())
            .build(new JcaContentSignerBuilder("SHA256withECDSA").build(kp.getPrivate()));
    }

    private void all()
        throws Exception
    {
        cacerts();
        csrattrs();

        X500Name subject = new X500Name("CN=bc-device-" + Hex.toHexString(randomBytes(6)));
        KeyPair k1 = newKey();
        X509CertificateHolder c1 = simpleenroll(subject, k1);
        X509CertificateHolder c2 = reenroll("simplereenroll", c1, k1, subject, k1);
        if (c2.getSerialNumber().equals(c1.getSerialNumber()))
        {
            throw new Failure("re-enrollment returned the same serial " + hex(c1.getSerialNumber()));
        }
        write("reenroll.pem", c2);
        ok("simplereenroll", "same key, serial " + hex(c1.getSerialNumber()) + " -> " + hex(c2.getSerialNumber()));

        KeyPair k3 = newKey();
        X509CertificateHolder c3 = reenroll("rekey", c2, k1, subject, k3);
        if (c3.getSerialNumber().equals(c2.getSerialNumber()) || c3.getSerialNumber().equals(c1.getSerialNumber()))
        {
            throw new Failure("rekey returned an old serial " + hex(c3.getSerialNumber()));
        }
        if (c3.getSubjectPublicKeyInfo().equals(c2.getSubjectPublicKeyInfo()))
        {
            throw new Failure("rekey certificate still carries the old public key");
        }
        write("rekey.pem", c3);
        ok("rekey", "new key, serial " + hex(c2.getSerialNumber()) + " -> " + hex(c3.getSerialNumber()));

        serverkeygen();
        ok("done", label == null ? "label-less" : "label " + label);
    }

    /** a. /cacerts: a non-empty bag, each certificate chaining inside it to a self-signed root, valid now. */
    private void cacerts()
        throws Exception
    {
        step = "cacerts";
        CACertsResponse r = service(null).getCACerts();
        if (!r.hasCertificates())
        {
            throw new Failure("no certificates in the response");
        }
        if (!r.isTrusted())
        {
            throw new Failure("response was not obtained over a trusted connection");
        }
        caCerts = ESTService.storeToArray(r.getCertificateStore());
        if (caCerts.length == 0)
        {
            throw new Failure("empty certificate store");
        }
        Date now = new Date();
        int roots = 0;
        for (X509CertificateHolder c : caCerts)
        {
            if (!c.isValidOn(now))
            {
                throw new Failure("not valid now: " + c.getSubject());
            }
            if (selfSigned(c))
            {
                roots++;
            }
            X509CertificateHolder at = c;
            for (int depth = 0; !selfSigned(at); depth++)
            {
                X509CertificateHolder up = issuerIn(at, caCerts);
                if (up == null || depth > caCerts.length)
                {
                    throw new Failure(c.getSubject() + " does not chain to a self-signed certificate in the bag");
                }
                at = up;
            }
        }
        if (roots == 0)
        {
            throw new Failure("no self-signed root in the bag");
        }
        // The bag's root is one the trust anchors name.
        boolean anchored = false;
        for (X509CertificateHolder c : caCerts)
        {
            for (TrustAnchor a : anchors)
            {
                anchored |= selfSigned(c) && java.util.Arrays.equals(c.getEncoded(), a.getTrustedCert().getEncoded());
            }
        }
        if (!anchored)
        {
            throw new Failure("no root of the bag is among the trust anchors");
        }
        write("cacerts.pem", caCerts);
        ok("cacerts", caCerts.length + " certificates");
    }

    /** e1. /csrattrs: 204 (or 404) is "none"; a 200 must parse. */
    private void csrattrs()
        throws Exception
    {
        step = "csrattrs";
        CSRRequestResponse r = service(null).getCSRAttributes();
        if (!r.hasAttributesResponse())
        {
            ok("csrattrs", "none");
            return;
        }
        ok("csrattrs", r.getAttributesResponse().getRequirements().size() + " attributes");
    }

    /** b. /simpleenroll with HTTP Basic (answered after the 401 challenge). */
    private X509CertificateHolder simpleenroll(X500Name subject, KeyPair kp)
        throws Exception
    {
        step = "simpleenroll";
        PKCS10CertificationRequest req = csr(subject, kp);
        EnrollmentResponse r = service(null).simpleEnroll(false, req, new JcaHttpAuthBuilder(user, password).build());
        X509CertificateHolder c = issued(r, req);
        write("enroll.pem", c);
        ok("simpleenroll", c.getSubject() + " serial " + hex(c.getSerialNumber()));
        return c;
    }

    /** c/d. /simplereenroll over mTLS with `current` and `currentKey`; the CSR has `subject` and `newKey`. */
    private X509CertificateHolder reenroll(String name, X509CertificateHolder current, KeyPair currentKey, X500Name subject, KeyPair newKey)
        throws Exception
    {
        step = name;
        PKCS10CertificationRequest req = csr(subject, newKey);
        EnrollmentResponse r = service(clientKey(current, currentKey.getPrivate())).simpleEnroll(true, req, null);
        return issued(r, req);
    }

    /** e2. /serverkeygen with HTTP Basic: the returned private key belongs to the certificate. */
    private void serverkeygen()
        throws Exception
    {
        step = "serverkeygen";
        X500Name subject = new X500Name("CN=bc-keygen-" + Hex.toHexString(randomBytes(6)));
        PKCS10CertificationRequest req = csr(subject, newKey());
        EnrollmentResponse r = service(null).simpleEnrollWithServersideCreation(req, new JcaHttpAuthBuilder(user, password).build());
        if (!r.isCompleted())
        {
            throw new Failure("server deferred the request (202)");
        }
        PrivateKeyInfo pki = r.getPrivateKeyInfo();
        if (pki == null)
        {
            throw new Failure("no private key in the response");
        }
        X509CertificateHolder[] certs = ESTService.storeToArray(r.getStore());
        if (certs.length != 1)
        {
            throw new Failure("expected exactly one certificate, got " + certs.length);
        }
        X509CertificateHolder c = certs[0];
        if (!c.getSubject().equals(subject))
        {
            throw new Failure("subject " + c.getSubject() + " != requested " + subject);
        }
        verifyIssued(c);
        PublicKey pub = toJca.getCertificate(c).getPublicKey();
        String alg = pub.getAlgorithm();
        PrivateKey key = KeyFactory.getInstance(alg, "BC").generatePrivate(new PKCS8EncodedKeySpec(pki.getEncoded()));
        String sigAlg = alg.equals("EC") || alg.equals("ECDSA") ? "SHA256withECDSA" : alg.equals("RSA") ? "SHA256withRSA" : alg;
        byte[] data = randomBytes(32);
        Signature s = Signature.getInstance(sigAlg, "BC");
        s.initSign(key);
        s.update(data);
        byte[] sig = s.sign();
        Signature v = Signature.getInstance(sigAlg, "BC");
        v.initVerify(pub);
        v.update(data);
        if (!v.verify(sig))
        {
            throw new Failure("the returned private key does not match the certificate's public key");
        }
        write("serverkeygen.pem", c);
        // PKCS#8 as received (JcaPEMWriter would turn it into SEC1 without the curve).
        try (PemWriter w = new PemWriter(new FileWriter(new File(workDir, "serverkeygen-key.pem"))))
        {
            w.writeObject(new PemObject("PRIVATE KEY", pki.getEncoded()));
        }
        ok("serverkeygen", c.getSubject() + " " + alg + " key matches, serial " + hex(c.getSerialNumber()));
    }

    /** The one certificate of an enrollment answer, checked against the CSR and the CA bag. */
    private X509CertificateHolder issued(EnrollmentResponse r, PKCS10CertificationRequest req)
        throws Exception
    {
        if (!r.isCompleted())
        {
            throw new Failure("server deferred the request (202), retry not before " + new Date(r.getNotBefore()));
        }
        X509CertificateHolder[] certs = ESTService.storeToArray(r.getStore());
        if (certs.length != 1)
        {
            throw new Failure("expected exactly one certificate, got " + certs.length);
        }
        X509CertificateHolder c = certs[0];
        if (!c.getSubject().equals(req.getSubject()))
        {
            throw new Failure("subject " + c.getSubject() + " != CSR subject " + req.getSubject());
        }
        if (!c.getSubjectPublicKeyInfo().equals(req.getSubjectPublicKeyInfo()))
        {
            throw new Failure("certificate public key differs from the CSR's");
        }
        verifyIssued(c);
        return c;
    }

    /** Signature by an issuing CA of the /cacerts bag, validity covering now. */
    private void verifyIssued(X509CertificateHolder c)
        throws Exception
    {
        X509CertificateHolder ca = issuerIn(c, caCerts);
        if (ca == null)
        {
            throw new Failure("no CA in /cacerts signed " + c.getSubject() + " (issuer " + c.getIssuer() + ")");
        }
        if (!c.isValidOn(new Date()))
        {
            throw new Failure("not valid now: " + c.getNotBefore() + " .. " + c.getNotAfter());
        }
    }

    private boolean selfSigned(X509CertificateHolder c)
        throws Exception
    {
        return c.getIssuer().equals(c.getSubject()) && signedBy(c, c);
    }

    /** The certificate of `bag` (other than `c` itself) whose subject is c's issuer and whose key verifies c. */
    private X509CertificateHolder issuerIn(X509CertificateHolder c, X509CertificateHolder[] bag)
        throws Exception
    {
        for (X509CertificateHolder ca : bag)
        {
            if (ca != c && ca.getSubject().equals(c.getIssuer()) && signedBy(c, ca))
            {
                return ca;
            }
        }
        return null;
    }

    private boolean signedBy(X509CertificateHolder c, X509CertificateHolder ca)
        throws Exception
    {
        ContentVerifierProvider v = new JcaContentVerifierProviderBuilder().setProvider("BC").build(ca);
        try
        {
            return c.isSignatureValid(v);
        }
        catch (Exception e)
        {
            return false;
        }
    }

    private void write(String name, X509CertificateHolder... certs)
        throws IOException
    {
        try (JcaPEMWriter w = new JcaPEMWriter(new FileWriter(new File(workDir, name))))
        {
            for (X509CertificateHolder c : certs)
            {
                w.writeObject(c);
            }
        }
    }

    private byte[] randomBytes(int n)
    {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    private static String hex(BigInteger serial)
    {
        return serial.toString(16);
    }

    private static void ok(String step, String detail)
    {
        System.out.println("ok " + step + " " + detail);
    }
}
