package io.bitrelay.actors.coordinator;

import com.typesafe.config.Config;

import java.time.Duration;

/**
 * How much work the coordinator takes on, from {@code bitrelay.coordinator} (docs/gateway.md, "Overload"). The
 * gateway's max-in-flight bounds what one gateway sends; these bound the coordinator itself, whatever number of
 * gateways feed it, and free the sequences of requests nobody waits for any more.
 *
 * @param maxWaiting      jobs queued for a sequence slot at most (max-waiting); a job beyond it is refused at once
 *                        and its gateway answers 429 with Retry-After
 * @param requestDeadline longest a job may take from reaching the coordinator to its last token (request-deadline);
 *                        past it the job fails (504) and its sequence and KV caches are freed, even when its gateway
 *                        is gone and nobody would cancel it
 */
public record AdmissionSettings(int maxWaiting, Duration requestDeadline) {
    public static final String MAX_WAITING_KEY = "bitrelay.coordinator.max-waiting";
    public static final String REQUEST_DEADLINE_KEY = "bitrelay.coordinator.request-deadline";

    public AdmissionSettings {
        if (maxWaiting < 1) {
            throw new IllegalArgumentException(MAX_WAITING_KEY + " must be ≥ 1, got " + maxWaiting);
        }
        if (requestDeadline.isNegative() || requestDeadline.isZero()) {
            throw new IllegalArgumentException(REQUEST_DEADLINE_KEY + " must be > 0, got " + requestDeadline);
        }
    }

    /** From {@code bitrelay.coordinator} ({@code c}). */
    static AdmissionSettings from(Config c) {
        return new AdmissionSettings(c.getInt("max-waiting"), c.getDuration("request-deadline"));
    }

    /** A job's deadline: {@code askedMillis} when it is shorter than request-deadline (and not 0), else request-deadline. */
    Duration deadlineFor(long askedMillis) {
        return askedMillis > 0 && askedMillis < requestDeadline.toMillis() ? Duration.ofMillis(askedMillis) : requestDeadline;
    }

    /** How often jobs are checked against their deadline: a hundredth of it, 20 ms to 1 s (a 10 min deadline: 1 s late at most). */
    Duration checkInterval() {
        return Duration.ofMillis(Math.clamp(requestDeadline.toMillis() / 100, 20, 1000));
    }
}
