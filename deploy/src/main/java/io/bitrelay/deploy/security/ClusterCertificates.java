package io.bitrelay.deploy.security;

import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;

/**
 * A cluster's certificate authority and the node certificates it signs, as the PKCS12 stores Pekko's mutual TLS
 * reads (docs/security.md). Keys come from the JDK (EC P-256), certificates are built and signed with BouncyCastle's
 * PKIX API; nothing here implements a primitive. Files in a directory:
 * <ul>
 *   <li>{@code ca.p12}: the CA's key and certificate, kept to sign more nodes later (guard it; nodes never need it);
 *   <li>{@code truststore.p12} and {@code ca.crt} (PEM): the CA's certificate alone, for every node;
 *   <li>{@code NAME.p12}: one node's key with its certificate chain (NAME as a DNS or IP subject alternative name).
 * </ul>
 */
public final class ClusterCertificates {
    public static final String CA_STORE = "ca.p12";
    public static final String TRUST_STORE = "truststore.p12";
    private static final String SIGNATURE = "SHA256withECDSA";
    private static final Duration CA_VALIDITY = Duration.ofDays(3650);
    private static final Duration NODE_VALIDITY = Duration.ofDays(825);

    private final PrivateKey caKey;
    private final X509Certificate caCertificate;
    private final SecureRandom random = new SecureRandom();

    private ClusterCertificates(PrivateKey caKey, X509Certificate caCertificate) {
        this.caKey = caKey;
        this.caCertificate = caCertificate;
    }

    /** A new self-signed CA named {@code clusterName}. */
    public static ClusterCertificates newAuthority(String clusterName) {
        try {
            KeyPair keys = newKeyPair();
            X500Name subject = new X500Name("CN=" + clusterName + " cluster CA, O=bitrelay");
            Instant now = Instant.now();
            X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(subject, serial(new SecureRandom()),
                    Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(CA_VALIDITY)), subject, keys.getPublic());
            JcaX509ExtensionUtils extensions = new JcaX509ExtensionUtils();
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(0)); // signs nodes, not CAs
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            builder.addExtension(Extension.subjectKeyIdentifier, false, extensions.createSubjectKeyIdentifier(keys.getPublic()));
            return new ClusterCertificates(keys.getPrivate(), sign(builder, keys.getPrivate()));
        } catch (GeneralSecurityException | IOException | OperatorCreationException e) {
            throw new IllegalStateException("could not create the cluster CA: " + e.getMessage(), e);
        }
    }

    /** The CA saved in {@code directory}/ca.p12. */
    public static ClusterCertificates load(Path directory, char[] password) throws IOException {
        try (InputStream in = Files.newInputStream(directory.resolve(CA_STORE))) {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(in, password);
            return new ClusterCertificates((PrivateKey) store.getKey("ca", password), (X509Certificate) store.getCertificate("ca"));
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot read " + directory.resolve(CA_STORE) + " (wrong password?): " + e.getMessage(), e);
        }
    }

    public X509Certificate caCertificate() {
        return caCertificate;
    }

    /** Writes ca.p12, truststore.p12 and ca.crt into {@code directory}. */
    public void writeAuthority(Path directory, char[] password) throws IOException {
        Files.createDirectories(directory);
        try {
            KeyStore ca = emptyStore();
            ca.setKeyEntry("ca", caKey, password, new Certificate[]{caCertificate});
            save(ca, directory.resolve(CA_STORE), password);
            KeyStore trust = emptyStore();
            trust.setCertificateEntry("bitrelay-ca", caCertificate);
            save(trust, directory.resolve(TRUST_STORE), password);
            Files.writeString(directory.resolve("ca.crt"), pem(caCertificate), StandardCharsets.US_ASCII);
        } catch (GeneralSecurityException e) {
            throw new IOException("could not write the CA's stores: " + e.getMessage(), e);
        }
    }

    /** Signs a new key for node {@code name} and writes {@code directory}/NAME.p12; returns its path. */
    public Path issueNode(String name, Path directory, char[] password) throws IOException {
        if (!name.matches("[A-Za-z0-9][A-Za-z0-9.:-]*")) {
            throw new IllegalArgumentException("node name '" + name + "' must be a host name or IP address");
        }
        try {
            KeyPair keys = newKeyPair();
            Instant now = Instant.now();
            X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(caCertificate, serial(random),
                    Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(NODE_VALIDITY)),
                    new X500Name("CN=" + name + ", O=bitrelay"), keys.getPublic());
            JcaX509ExtensionUtils extensions = new JcaX509ExtensionUtils();
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
            // every node is a TLS server (accepting) and a client (connecting) in Artery
            builder.addExtension(Extension.extendedKeyUsage, false,
                    new ExtendedKeyUsage(new KeyPurposeId[]{KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
            int kind = name.matches("[0-9.]+|.*:.*") ? GeneralName.iPAddress : GeneralName.dNSName;
            builder.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName(kind, name)));
            builder.addExtension(Extension.authorityKeyIdentifier, false, extensions.createAuthorityKeyIdentifier(caCertificate));
            X509Certificate certificate = sign(builder, caKey);
            KeyStore store = emptyStore();
            store.setKeyEntry("node", keys.getPrivate(), password, new Certificate[]{certificate, caCertificate});
            Path file = directory.resolve(name + ".p12");
            Files.createDirectories(directory);
            save(store, file, password);
            return file;
        } catch (GeneralSecurityException | OperatorCreationException e) {
            throw new IOException("could not issue a certificate for " + name + ": " + e.getMessage(), e);
        }
    }

    private static KeyPair newKeyPair() throws GeneralSecurityException {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"));
        return generator.generateKeyPair();
    }

    private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey signer)
            throws OperatorCreationException, GeneralSecurityException {
        return new JcaX509CertificateConverter().getCertificate(builder.build(new JcaContentSignerBuilder(SIGNATURE).build(signer)));
    }

    private static BigInteger serial(SecureRandom random) {
        return new BigInteger(127, random); // positive, unique with overwhelming probability (RFC 5280: ≤ 20 octets)
    }

    private static KeyStore emptyStore() throws GeneralSecurityException, IOException {
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        return store;
    }

    /** Owner-only where the file system has POSIX permissions: a store holds a private key. */
    private static void save(KeyStore store, Path file, char[] password) throws IOException, GeneralSecurityException {
        Files.deleteIfExists(file);
        Files.createFile(file);
        try {
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        } catch (UnsupportedOperationException ignored) {
            // not a POSIX file system: its own ACLs apply
        }
        try (OutputStream out = Files.newOutputStream(file)) {
            store.store(out, password);
        }
    }

    private static String pem(X509Certificate certificate) throws GeneralSecurityException {
        return "-----BEGIN CERTIFICATE-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(certificate.getEncoded())
                + "\n-----END CERTIFICATE-----\n";
    }
}
