package io.bitrelay.deploy.cluster;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConfigSetsTest {
    @Test
    void shouldKeepTheLastValueOfAKeyAndEqualsSignsInValues() {
        Map<String, Object> settings = ConfigSets.parse(List.of("bitrelay.worker.device-link-codecs=on",
                "bitrelay.worker.device-link-codecs=off", "bitrelay.gateway.banner=a=b"));
        assertEquals(Map.of("bitrelay.worker.device-link-codecs", "off", "bitrelay.gateway.banner", "a=b"), settings);
    }

    @Test
    void shouldNameAFlagWithoutAKey() {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> ConfigSets.parse(List.of("=on")));
        assertTrue(error.getMessage().contains("'=on'"), error.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ConfigSets.parse(List.of("bitrelay.worker.device")));
    }
}
