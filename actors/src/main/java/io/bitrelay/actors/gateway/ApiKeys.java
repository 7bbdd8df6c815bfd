package io.bitrelay.actors.gateway;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * The API keys a client may present as {@code Authorization: Bearer <key>}, from
 * {@code bitrelay.gateway.api-keys-file} (one key a line; blank lines and lines starting with # are skipped) and the
 * environment variable named by {@code bitrelay.gateway.api-keys-env} (keys separated by commas). With no key from
 * either, nothing is required.
 *
 * <p>Only SHA-256 digests of the keys are kept, and a presented key is checked against every one of them with
 * {@link MessageDigest#isEqual}: digests have one length, so the time taken says nothing about how much of a key
 * was right, nor which key was nearly matched.
 */
final class ApiKeys {
    /** RFC 6750's b64token: what may follow "Bearer " in an Authorization header. */
    private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9\\-._~+/]+=*");
    private static final String BEARER = "Bearer ";

    /** What a request's Authorization header amounts to. */
    enum Verdict { ACCEPTED, MISSING, NOT_BEARER, WRONG }

    private final List<byte[]> digests;

    private ApiKeys(List<byte[]> digests) {
        this.digests = List.copyOf(digests);
    }

    static ApiKeys none() {
        return new ApiKeys(List.of());
    }

    /** @throws IllegalArgumentException naming the key and the file or variable when a key cannot be read or used */
    static ApiKeys load(GatewaySettings settings, Function<String, String> environment) {
        List<byte[]> digests = new ArrayList<>();
        if (!settings.apiKeysFile().isEmpty()) {
            Path file = Path.of(settings.apiKeysFile());
            List<String> lines;
            try {
                lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new IllegalArgumentException(GatewaySettings.PATH + ".api-keys-file: cannot read " + file + ": " + e, e);
            }
            int before = digests.size();
            for (int i = 0; i < lines.size(); i++) {
                String key = lines.get(i).strip();
                if (!key.isEmpty() && !key.startsWith("#")) {
                    digests.add(digest(checked(key, "line " + (i + 1) + " of " + file)));
                }
            }
            if (digests.size() == before) {
                throw new IllegalArgumentException(GatewaySettings.PATH + ".api-keys-file: " + file + " holds no key");
            }
        }
        if (!settings.apiKeysEnv().isEmpty()) {
            String value = environment.apply(settings.apiKeysEnv());
            if (value != null) {
                String[] keys = value.split(",");
                for (int i = 0; i < keys.length; i++) {
                    String key = keys[i].strip();
                    if (!key.isEmpty()) {
                        digests.add(digest(checked(key, "key " + (i + 1) + " of $" + settings.apiKeysEnv())));
                    }
                }
            }
        }
        return new ApiKeys(digests);
    }

    private static String checked(String key, String where) {
        if (!TOKEN.matcher(key).matches()) {
            throw new IllegalArgumentException("the API key on " + where + " holds characters a Bearer token cannot"
                    + " carry (letters, digits and -._~+/ only, then any '=')");
        }
        return key;
    }

    /** Whether any key is configured: then every /v1/ request must present one. */
    boolean required() {
        return !digests.isEmpty();
    }

    int count() {
        return digests.size();
    }

    /** @param authorization the request's Authorization header, or null */
    Verdict check(String authorization) {
        if (authorization == null || authorization.isBlank()) {
            return Verdict.MISSING;
        }
        if (!authorization.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
            return Verdict.NOT_BEARER;
        }
        byte[] presented = digest(authorization.substring(BEARER.length()).strip());
        boolean matched = false;
        for (byte[] key : digests) {
            matched |= MessageDigest.isEqual(key, presented); // no early exit: every key is compared
        }
        return matched ? Verdict.ACCEPTED : Verdict.WRONG;
    }

    private static byte[] digest(String key) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
