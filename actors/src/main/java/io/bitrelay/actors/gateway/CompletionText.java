package io.bitrelay.actors.gateway;

import java.util.List;

/**
 * The completion text as the client sees it, built from token deltas: it ends just before the first
 * stop string, and any tail that could still grow into a stop string is held back until it cannot, so a
 * streamed stop string never reaches the client. Streaming and non-streaming responses both use this,
 * so the deltas of a stream concatenate to the non-streaming text.
 */
final class CompletionText {
    private final IncrementalDetokenizer detokenizer;
    private final List<String> stops;
    private final StringBuilder text = new StringBuilder(); // everything decoded, cut at a stop string once seen
    private int emitted;     // chars of text already handed out
    private boolean stopped; // a stop string was seen

    CompletionText(IncrementalDetokenizer detokenizer, List<String> stops) {
        this.detokenizer = detokenizer;
        this.stops = List.copyOf(stops);
    }

    /** Adds a generated token; returns the text the client may see now ("" when nothing is new or safe). */
    String append(int token) {
        return stopped ? "" : advance(detokenizer.push(token), false);
    }

    /** The sequence ended (EOS or max tokens): returns everything still held back. */
    String finish() {
        return stopped ? "" : advance(detokenizer.flush(), true);
    }

    boolean stopped() {
        return stopped;
    }

    /** The text handed out so far. */
    String emittedText() {
        return text.substring(0, emitted);
    }

    private String advance(String delta, boolean end) {
        text.append(delta);
        // A stop string can only start at or after `emitted`: any earlier start would have been held back.
        int cut = -1;
        for (String stop : stops) {
            int at = text.indexOf(stop, emitted);
            if (at >= 0 && (cut < 0 || at < cut)) {
                cut = at;
            }
        }
        if (cut >= 0) {
            stopped = true;
            text.setLength(cut);
        }
        int safe = stopped || end ? text.length() : text.length() - possibleStopPrefix();
        String out = text.substring(emitted, safe);
        emitted = safe;
        return out;
    }

    /** Length of the longest tail of the unemitted text that is a proper prefix of some stop string. */
    private int possibleStopPrefix() {
        String pending = text.substring(emitted);
        int longest = 0;
        for (String stop : stops) {
            for (int length = Math.min(stop.length() - 1, pending.length()); length > longest; length--) {
                if (pending.regionMatches(pending.length() - length, stop, 0, length)) {
                    longest = length;
                    break;
                }
            }
        }
        return longest;
    }
}
