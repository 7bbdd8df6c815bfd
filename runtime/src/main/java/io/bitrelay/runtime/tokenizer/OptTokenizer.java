package io.bitrelay.runtime.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.bitrelay.runtime.checkpoint.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.OptionalInt;

/**
 * The checkpoint's own tokenizer.json, run by Hugging Face's tokenizers library through DJL. Special
 * tokens are added as the file's post-processor says (OPT prepends {@code </s>}).
 */
public final class OptTokenizer implements AutoCloseable {
    private final HuggingFaceTokenizer tokenizer;
    private final int maxBytesPerToken; // 0: unknown

    private OptTokenizer(HuggingFaceTokenizer tokenizer, int maxBytesPerToken) {
        this.tokenizer = tokenizer;
        this.maxBytesPerToken = maxBytesPerToken;
    }

    /** @param checkpointDirectory a directory holding tokenizer.json */
    /**
     * DJL picks its native library by the machine's "flavor": on a machine with CUDA it looks for a CUDA build,
     * which the jar does not carry, and then tries to download one. The tokenizer runs on the CPU everywhere,
     * so we ask for the CPU build the jar ships, unless the operator chose otherwise.
     */
    private static final String FLAVOR_KEY = "RUST_FLAVOR";

    static {
        if (System.getProperty(FLAVOR_KEY) == null && System.getenv(FLAVOR_KEY) == null) {
            System.setProperty(FLAVOR_KEY, "cpu");
        }
    }

    public static OptTokenizer load(Path checkpointDirectory) {
        Path file = checkpointDirectory.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(checkpointDirectory + ": missing tokenizer.json");
        }
        try {
            return new OptTokenizer(HuggingFaceTokenizer.newInstance(file, Map.of(
                    "addSpecialTokens", "true",
                    "truncation", "false",
                    "padding", "false")), TokenSpan.maxBytesPerToken(file));
        } catch (IOException | RuntimeException e) {
            throw new CheckpointException(file + ": cannot load tokenizer: " + causes(e), e);
        }
    }

    public int[] encode(String text) {
        return ids(tokenizer.encode(text));
    }

    /**
     * The text's tokens alone, without the {@code </s>} OPT prepends: how a corpus is tokenized for
     * perplexity and calibration windows, where a BOS would only appear at the very start of the text.
     */
    public int[] encodeWithoutSpecialTokens(String text) {
        return ids(tokenizer.encode(text, false, false));
    }

    private static int[] ids(Encoding encoding) {
        long[] ids = encoding.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /**
     * The most UTF-8 bytes of text one token can stand for, when the tokenizer makes that knowable
     * ({@link TokenSpan}): a text of {@code b} bytes then has at least {@code ceil(b / max)} tokens, so a prompt far
     * over a context can be refused without tokenizing it. Empty for tokenizers it cannot bound.
     */
    public OptionalInt maxBytesPerToken() {
        return maxBytesPerToken > 0 ? OptionalInt.of(maxBytesPerToken) : OptionalInt.empty();
    }

    public String decode(int[] ids) {
        long[] wide = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            wide[i] = ids[i];
        }
        return tokenizer.decode(wide, true);
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    /** The message of every cause in the chain: DJL's own message ("Failed to load …") hides the reason. */
    private static String causes(Throwable e) {
        StringBuilder text = new StringBuilder(String.valueOf(e.getMessage()));
        for (Throwable cause = e.getCause(); cause != null && cause != cause.getCause(); cause = cause.getCause()) {
            text.append(" (").append(cause.getClass().getSimpleName()).append(": ").append(cause.getMessage()).append(')');
        }
        return text.toString();
    }
}
