package io.bitrelay.actors.coordinator;

import io.bitrelay.actors.node.BitrelayConfig;
import io.bitrelay.runtime.wire.LinkProtection;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** bitrelay.security.authenticate-links and encrypt-links as the coordinator reads them (docs/security.md). */
class LinkProtectionSettingsTest {

    private static LinkProtection protection(Map<String, ?> overrides) {
        return CoordinatorSettings.from(BitrelayConfig.load(overrides, null)).linkProtection();
    }

    @Test
    void shouldAuthenticateByDefaultAndEncryptOnlyWhenAsked() {
        assertEquals(LinkProtection.AUTHENTICATED, protection(Map.of()));
        assertEquals(LinkProtection.ENCRYPTED, protection(Map.of("bitrelay.security.encrypt-links", "on")));
        assertEquals(LinkProtection.NONE, protection(Map.of("bitrelay.security.authenticate-links", "off")));
    }

    @Test
    void shouldRefuseEncryptionWithAuthenticationOffNamingBothKeys() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> protection(
                Map.of("bitrelay.security.authenticate-links", "off", "bitrelay.security.encrypt-links", "on")));
        assertTrue(e.getMessage().contains("bitrelay.security.encrypt-links = on needs bitrelay.security.authenticate-links = on"),
                e.getMessage());
    }

    @Test
    void shouldNameTheKeyWhenItIsNotABoolean() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> protection(Map.of("bitrelay.security.encrypt-links", "maybe")));
        assertTrue(e.getMessage().contains("encrypt-links"), e.getMessage());
    }
}
