package io.bitrelay.actors.gateway;

import io.bitrelay.runtime.eval.TokenScore;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * Collects the {@code logprobs} object of one non-streamed completion as OpenAI's legacy API shapes it:
 * per token its text, its log-probability (null for the echoed prompt's first token, which nothing
 * predicts), the top alternatives as {text: logprob} (when logprobs > 0) and its character offset in
 * the response's text. Echoed prompt tokens come first, then generated ones. Touched under the session's lock.
 */
final class CompletionLogprobs {
    private final IntFunction<String> tokenText;
    private final int top;
    final List<String> tokens = new ArrayList<>();
    final List<Double> tokenLogprobs = new ArrayList<>();
    final List<Map<String, Double>> topLogprobs = new ArrayList<>();
    final List<Integer> textOffsets = new ArrayList<>();
    private int offset;
    private int[] prompt;
    private int promptTokensScored;

    /**
     * @param tokenText  a token id's text as the tokenizer decodes it alone
     * @param top        alternatives per position (the request's logprobs)
     * @param textOffset where the first token collected here starts in the response's text
     */
    CompletionLogprobs(IntFunction<String> tokenText, int top, int textOffset) {
        this.tokenText = tokenText;
        this.top = top;
        this.offset = textOffset;
    }

    /** Echo: the prompt's first token, which has no score; later prompt tokens come with {@link #promptScores}. */
    void startPrompt(int[] promptTokens) {
        this.prompt = promptTokens;
        add(promptTokens[0], null);
        promptTokensScored = 1;
    }

    /** The next chunk of prompt scores; each must score the prompt's next token. */
    void promptScores(List<TokenScore> scores) {
        for (TokenScore score : scores) {
            if (prompt == null || promptTokensScored >= prompt.length || prompt[promptTokensScored] != score.token()) {
                throw new IllegalStateException("prompt score for token " + score.token() + " does not match prompt position "
                        + promptTokensScored);
            }
            add(score.token(), score);
            promptTokensScored++;
        }
    }

    /** A generated token with its score. */
    void generated(TokenScore score) {
        add(score.token(), score);
    }

    /** Whether every prompt token has its entry (scoring jobs must end so). */
    boolean promptComplete() {
        return prompt == null || promptTokensScored == prompt.length;
    }

    boolean withTop() {
        return top > 0;
    }

    private void add(int token, TokenScore score) {
        String text = tokenText.apply(token);
        tokens.add(text);
        textOffsets.add(offset);
        offset += text.length();
        tokenLogprobs.add(score == null ? null : score.logprob());
        if (score == null) {
            topLogprobs.add(null);
            return;
        }
        Map<String, Double> alternatives = new LinkedHashMap<>();
        for (int i = 0; i < Math.min(top, score.topTokens().length); i++) {
            alternatives.putIfAbsent(tokenText.apply(score.topTokens()[i]), score.topLogprobs()[i]);
        }
        topLogprobs.add(alternatives);
    }
}
