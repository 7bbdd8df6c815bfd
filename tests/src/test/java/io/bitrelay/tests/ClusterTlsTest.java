package io.bitrelay.tests;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.bitrelay.actors.node.BitrelayConfig;
import io.bitrelay.actors.node.ClusterTls;
import io.bitrelay.deploy.security.ClusterCertificates;
import org.apache.pekko.actor.AbstractActor;
import org.apache.pekko.actor.ActorRef;
import org.apache.pekko.actor.ActorSelection;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.Props;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.MemberStatus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.StreamSupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mutual TLS between nodes, as bitrelay configures it ({@link ClusterTls} over stores `bitrelay certs` writes): a
 * node whose certificate another CA signed cannot join and delivers 0 messages, while a node of the cluster's CA
 * joins and delivers every one (so the test can tell the two apart). Pekko's TlsTcpSpec makes the same point.
 */
@Timeout(120)
class ClusterTlsTest {
    private static final String PASSWORD = "throwaway-test-password";
    private static final int MESSAGES = 20;

    @TempDir
    Path temp;

    /** Counts the strings it receives (Pekko serializes String natively: no Java serialization involved). */
    static final class Counter extends AbstractActor {
        static final AtomicInteger received = new AtomicInteger();

        @Override
        public Receive createReceive() {
            return receiveBuilder().match(String.class, s -> received.incrementAndGet()).build();
        }
    }

    @Test
    void shouldKeepOutANodeWhoseCertificateAnotherCaSignedAndAdmitOneOfTheClusterCa() throws Exception {
        Path cluster = temp.resolve("cluster");
        ClusterCertificates ca = ClusterCertificates.newAuthority("test");
        ca.writeAuthority(cluster, PASSWORD.toCharArray());
        Path seedStore = ca.issueNode("127.0.0.1", cluster, PASSWORD.toCharArray());
        Path memberStore = ca.issueNode("localhost", cluster, PASSWORD.toCharArray());
        Path rogue = temp.resolve("rogue");
        ClusterCertificates rogueCa = ClusterCertificates.newAuthority("test"); // same name, another key
        rogueCa.writeAuthority(rogue, PASSWORD.toCharArray());
        Path rogueStore = rogueCa.issueNode("127.0.0.1", rogue, PASSWORD.toCharArray());
        Path trust = cluster.resolve(ClusterCertificates.TRUST_STORE);

        Counter.received.set(0);
        ActorSystem seed = node(seedStore, trust);
        ActorSystem outsider = null;
        ActorSystem member = null;
        try {
            Address seedAddress = Cluster.get(seed).selfAddress();
            Cluster.get(seed).join(seedAddress);
            seed.actorOf(Props.create(Counter.class), "counter");
            awaitUp(seed, 1, Duration.ofSeconds(20));

            // a node holding a certificate of another CA, trusting the cluster's CA: only the seed's check of the client's
            // certificate (mutual authentication) can stop it
            outsider = node(rogueStore, trust);
            Cluster.get(outsider).join(seedAddress);
            send(outsider, seedAddress);
            Thread.sleep(8_000); // several handshake attempts and join retries
            assertEquals(0, Counter.received.get(), "messages delivered from a node of another CA");
            assertEquals(1, upMembers(seed), "members of the seed's cluster after the outsider tried to join");

            member = node(memberStore, trust);
            Cluster.get(member).join(seedAddress);
            awaitUp(seed, 2, Duration.ofSeconds(30));
            send(member, seedAddress);
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (Counter.received.get() < MESSAGES && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertEquals(MESSAGES, Counter.received.get(), "messages delivered from a node of the cluster's CA");
            assertEquals(2, upMembers(seed), "the outsider never became a member");
        } finally {
            for (ActorSystem system : new ActorSystem[]{outsider, member, seed}) {
                if (system != null) {
                    system.terminate();
                }
            }
        }
    }

    @Test
    void shouldRefuseToStartWithTlsOnAndNoStoresOrPassword() {
        Config noStores = BitrelayConfig.load(Map.of("bitrelay.security.tls", "on"), null);
        IllegalArgumentException missing = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> ClusterTls.apply(noStores));
        assertTrue(missing.getMessage().contains("bitrelay.security.key-store"), missing.getMessage());
        Config plain = BitrelayConfig.load(Map.of("bitrelay.security.tls", "off"), null);
        assertEquals("tcp", ClusterTls.apply(plain).getString("pekko.remote.artery.transport"));
    }

    /** A cluster node on 127.0.0.1 with bitrelay's defaults and mutual TLS over these stores. */
    private static ActorSystem node(Path keyStore, Path trustStore) {
        Map<String, Object> settings = new HashMap<>(ClusterTls.pekkoSettings(keyStore, trustStore, PASSWORD));
        settings.put("pekko.remote.artery.canonical.port", 0);
        settings.put("pekko.cluster.jmx.enabled", "off");
        Config config = ConfigFactory.parseMap(settings).withFallback(BitrelayConfig.load(Map.of(), null)).resolve();
        return ActorSystem.create("bitrelay", config);
    }

    private static void send(ActorSystem from, Address to) {
        ActorSelection counter = from.actorSelection(to.toString() + "/user/counter");
        for (int i = 0; i < MESSAGES; i++) {
            counter.tell("hello " + i, ActorRef.noSender());
        }
    }

    private static long upMembers(ActorSystem system) {
        return StreamSupport.stream(Cluster.get(system).state().getMembers().spliterator(), false)
                .filter(m -> m.status() == MemberStatus.up()).count();
    }

    private static void awaitUp(ActorSystem system, int members, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (upMembers(system) < members && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertEquals(members, upMembers(system), "members up");
    }
}
