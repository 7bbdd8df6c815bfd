package io.bitrelay.actors.node;

import java.util.List;
import java.util.Set;

/**
 * How one node starts: which roles it plays and how it finds the cluster.
 *
 * @param roles    any of coordinator, worker, gateway
 * @param host     the address other nodes reach this one at (Pekko remoting and the data plane)
 * @param port     Pekko remoting port; 0 picks a free one
 * @param seeds    host:port of seed nodes; empty = this node is the first seed
 * @param workerId name of this node's worker in logs and reports
 */
public record NodeOptions(Set<String> roles, String host, int port, List<String> seeds, String workerId) {
    public static final Set<String> KNOWN_ROLES = Set.of("coordinator", "worker", "gateway");

    public NodeOptions {
        for (String role : roles) {
            if (!KNOWN_ROLES.contains(role)) {
                throw new IllegalArgumentException("unknown role '" + role + "' (known: coordinator, worker, gateway)");
            }
        }
        if (roles.isEmpty()) {
            throw new IllegalArgumentException("a node needs at least one role");
        }
        for (String seed : seeds) {
            if (!seed.matches("[^:]+:\\d+")) {
                throw new IllegalArgumentException("seed '" + seed + "' is not host:port");
            }
        }
    }

    public boolean has(String role) {
        return roles.contains(role);
    }
}
