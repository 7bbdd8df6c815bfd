package io.bitrelay.deploy.security;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** Makes (or extends) a cluster's CA and node key stores for mutual TLS between nodes (docs/security.md). */
@Command(name = "certs", mixinStandardHelpOptions = true,
        description = {"Create a cluster CA and one PKCS12 key store per node for mutual TLS between nodes.",
                "The stores' password comes from the environment variable --password-env (default BITRELAY_TLS_PASSWORD).",
                "Run again with the same --out and new --nodes to sign more nodes with the same CA."})
public final class CertsCommand implements Callable<Integer> {
    @Option(names = "--out", required = true, paramLabel = "DIR",
            description = "Directory for ca.p12 (keep it private), truststore.p12, ca.crt and NODE.p12 files.")
    Path out;

    @Option(names = "--nodes", required = true, split = ",", paramLabel = "NAME",
            description = "Node names (host names or IPs, as in --host), comma-separated; one key store each.")
    List<String> nodes;

    @Option(names = "--cluster-name", defaultValue = "bitrelay", description = "Name in the CA's subject (default: ${DEFAULT-VALUE}).")
    String clusterName;

    @Option(names = "--password-env", defaultValue = "BITRELAY_TLS_PASSWORD",
            description = "Environment variable holding the stores' password (default: ${DEFAULT-VALUE}).")
    String passwordEnv;

    @Override
    public Integer call() throws Exception {
        String password = System.getenv(passwordEnv);
        if (password == null || password.length() < 8) {
            System.err.println("certs: set " + passwordEnv + " to the stores' password (8 characters at least), e.g. "
                    + "export " + passwordEnv + "=\"$(openssl rand -base64 24)\"");
            return 2;
        }
        char[] secret = password.toCharArray();
        ClusterCertificates ca;
        if (Files.exists(out.resolve(ClusterCertificates.CA_STORE))) {
            ca = ClusterCertificates.load(out, secret);
            System.out.println("using the CA in " + out.resolve(ClusterCertificates.CA_STORE));
        } else {
            ca = ClusterCertificates.newAuthority(clusterName);
            ca.writeAuthority(out, secret);
            System.out.println("created the cluster CA: " + out.resolve(ClusterCertificates.CA_STORE) + " (keep private), "
                    + out.resolve(ClusterCertificates.TRUST_STORE) + " and " + out.resolve("ca.crt") + " (for every node)");
        }
        for (String node : nodes) {
            System.out.println("node " + node + ": " + ca.issueNode(node, out, secret));
        }
        System.out.println("on each node: --set bitrelay.security.key-store=" + out.resolve("NODE.p12")
                + " --set bitrelay.security.trust-store=" + out.resolve(ClusterCertificates.TRUST_STORE)
                + " with " + passwordEnv + " in its environment");
        return 0;
    }
}
