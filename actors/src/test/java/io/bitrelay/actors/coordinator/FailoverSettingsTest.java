package io.bitrelay.actors.coordinator;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.OptionalLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FailoverSettingsTest {
    private static Config coordinator(String overrides) {
        return ConfigFactory.parseString(overrides)
                .withFallback(ConfigFactory.parseString("pending-timeout = 60s\nmin-workers = 1"));
    }

    @Test
    void shouldReadTheKeysAndTakeMinWorkersZeroAsExpectedWorkers() {
        FailoverSettings settings = FailoverSettings.from(coordinator("pending-timeout = 5s"), 3);
        assertEquals(Duration.ofSeconds(5), settings.pendingTimeout());
        assertEquals(1, settings.minWorkers());
        assertEquals(Duration.ofMillis(500), settings.checkInterval(), "a tenth of the timeout");
        assertEquals(3, FailoverSettings.from(coordinator("min-workers = 0"), 3).minWorkers());
        assertEquals(Duration.ofSeconds(1), FailoverSettings.from(coordinator(""), 3).checkInterval(), "1 s at most");
    }

    @Test
    void shouldNameTheKeyOfABadValue() {
        IllegalArgumentException negative = assertThrows(IllegalArgumentException.class,
                () -> FailoverSettings.from(coordinator("min-workers = -1"), 3));
        assertTrue(negative.getMessage().contains("bitrelay.coordinator.min-workers"), negative.getMessage());
        IllegalArgumentException zero = assertThrows(IllegalArgumentException.class,
                () -> FailoverSettings.from(coordinator("pending-timeout = 0s"), 3));
        assertTrue(zero.getMessage().contains(FailoverSettings.PENDING_TIMEOUT_KEY), zero.getMessage());
    }

    @Test
    void shouldLetNothingExpireUntilTheOutageIsOlderThanTheTimeout() {
        PipelineOutage outage = new PipelineOutage("worker-2 (stage 1) left the cluster", 10_000_000_000L);
        Duration timeout = Duration.ofSeconds(5);
        assertEquals(OptionalLong.empty(), outage.expiredQueuedBy(14_000_000_000L, timeout),
                "a request queued long before the loss waits from the loss");
        assertEquals(OptionalLong.of(11_000_000_000L), outage.expiredQueuedBy(16_000_000_000L, timeout),
                "then what was queued 5 s ago or earlier expires");
    }
}
